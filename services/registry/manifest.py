"""Signed artifact manifests: what a registered version's files must be, byte for byte.

At registration (`pipelines/registry/register.py`) every file of the logged model gets its SHA-256 in
`manifest.json` (sorted relative paths), and the manifest's exact bytes are signed into `manifest.sig`. Whoever loads
a version (`services.registry.client.download_version`: the model server, the gate, the release, the drift job)
verifies the signature first, then every digest, and refuses a missing, extra or changed file by name.

One verification interface, two key types: the public key is base64 of its DER SubjectPublicKeyInfo, either Ed25519
(locally: the private key lives in the local secret store) or ECDSA P-256 with SHA-256 (the cluster design: an AWS KMS
asymmetric key `ECC_NIST_P256` signing `ECDSA_SHA_256`, whose `GetPublicKey` returns exactly this DER). The
signers are in `pipelines/registry/signers.py`. During a key rotation the variable holds both keys, comma-separated:
a manifest verifies when any of them verifies it (runbooks/artifact-signing-key-rotation.md).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from core import contracts

MANIFEST_FILE = "manifest.json"
SIGNATURE_FILE = "manifest.sig"
FORMAT = "mlp-artifact-manifest/1"
# Files that are never part of a version's content (top level only): the manifest pair itself, the local cache's
# completion mark, and `registered_model_meta`, which MLflow's client writes into every download of a `models:/` URI
# (the name and version it was fetched as; it is not stored, and nothing executes it).
NOT_CONTENT = frozenset({MANIFEST_FILE, SIGNATURE_FILE, ".complete", "registered_model_meta"})
WHAT_TO_DO = (
    "Never serve it: re-register the package (`mlp model register`), which writes and signs a new version, "
    "and find out who wrote to the artifact store (docs/security.md, Verified artifacts)."
)


class ArtifactVerificationError(RuntimeError):
    """A version's files do not match their signed manifest; the message names the file and what to do."""


@dataclass(frozen=True)
class Verified:
    files: int
    bytes: int
    seconds: float


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def content_files(root: Path) -> dict[str, Path]:
    """Every regular file under `root` by its POSIX path relative to `root`, minus `NOT_CONTENT` at the top."""
    found: dict[str, Path] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            raise ArtifactVerificationError(f"{root}: {rel} is a symbolic link; a model version holds plain files only")
        if path.is_file() and rel not in NOT_CONTENT:
            found[rel] = path
    return found


def build_manifest(root: Path) -> dict[str, Any]:
    """The manifest of a model directory: format, algorithm and every file's SHA-256, paths sorted."""
    files = content_files(root)
    if not files:
        raise ArtifactVerificationError(f"{root}: no files to put in a manifest")
    return {"format": FORMAT, "algorithm": "sha256", "files": {rel: sha256_file(p) for rel, p in files.items()}}


def manifest_bytes(manifest: dict[str, Any]) -> bytes:
    """The canonical bytes that are written and signed (sorted keys, fixed separators, trailing newline)."""
    return (json.dumps(manifest, sort_keys=True, indent=1) + "\n").encode()


# ---------------------------------------------------------------- keys


def new_private_key_pem() -> str:
    """A new Ed25519 signing key as unencrypted PKCS#8 PEM (it goes straight into the 0600 secret store)."""
    key = ed25519.Ed25519PrivateKey.generate()
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _private_key(pem: str) -> ed25519.Ed25519PrivateKey:
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise ArtifactVerificationError("the artifact signing key is not an Ed25519 key; regenerate it")
    return key


def public_key_text(private_pem: str) -> str:
    """The verification key for a signing key: base64 of the DER SubjectPublicKeyInfo (one line, fits an env var)."""
    der = (
        _private_key(private_pem)
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return base64.b64encode(der).decode()


def key_fingerprint(public_key: str) -> str:
    """A short, stable name for a public key in messages (SHA-256 of its DER, 16 hex digits; `/` between keys)."""
    prints = []
    for key in (k.strip() for k in public_key.split(",") if k.strip()):
        try:
            prints.append(hashlib.sha256(base64.b64decode(key, validate=True)).hexdigest()[:16])
        except (binascii.Error, ValueError):
            prints.append("unreadable")
    return "/".join(prints) or "none"


def _verify_signature(public_keys: str, signature: bytes, data: bytes) -> None:
    """Raise InvalidSignature unless `signature` signs `data` under one of the comma-separated `public_keys`."""
    keys = [k.strip() for k in public_keys.split(",") if k.strip()]
    if not keys:
        raise ArtifactVerificationError("no artifact public key given")
    for key in keys[:-1]:
        try:
            _verify_with(key, signature, data)
            return
        except InvalidSignature:
            continue
    _verify_with(keys[-1], signature, data)


def _verify_with(public_key: str, signature: bytes, data: bytes) -> None:
    """Raise InvalidSignature unless `signature` signs `data` under `public_key` (Ed25519 or ECDSA P-256)."""
    try:
        key = serialization.load_der_public_key(base64.b64decode(public_key, validate=True))
    except (binascii.Error, ValueError) as exc:
        raise ArtifactVerificationError(
            f"the artifact public key is not base64 DER of a public key ({exc}); set it from the signing key "
            "(locally `mlp` does that from the secret store; in the cluster the ConfigMap "
            f"{contracts.ARTIFACT_KEY_CONFIGMAP})"
        ) from exc
    if isinstance(key, ed25519.Ed25519PublicKey):
        key.verify(signature, data)
    elif isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        key.verify(signature, data, ec.ECDSA(hashes.SHA256()))  # KMS ECDSA_SHA_256 signatures are DER too
    else:
        raise ArtifactVerificationError(
            f"the artifact public key is a {type(key).__name__}; only Ed25519 and ECDSA P-256 are accepted"
        )


# ---------------------------------------------------------------- sign and verify


def sign_ed25519(private_pem: str, data: bytes) -> bytes:
    return _private_key(private_pem).sign(data)


def sign_dir(root: Path, sign: Callable[[bytes], bytes]) -> dict[str, Any]:
    """Write `manifest.json` and `manifest.sig` (base64 of `sign(manifest bytes)`) into `root`."""
    manifest = build_manifest(root)
    data = manifest_bytes(manifest)
    (root / MANIFEST_FILE).write_bytes(data)
    (root / SIGNATURE_FILE).write_text(base64.b64encode(sign(data)).decode() + "\n")
    return manifest


def verify_dir(root: Path, public_key: str, what: str) -> Verified:
    """Check `root` against its signed manifest: signature first, then every file. `what` names the version."""
    started = time.monotonic()
    manifest_path, sig_path = root / MANIFEST_FILE, root / SIGNATURE_FILE
    absent = [p.name for p in (manifest_path, sig_path) if not p.is_file()]
    if absent:
        raise ArtifactVerificationError(
            f"{what}: {' and '.join(absent)} missing, so nothing proves these files are what was registered. "
            + WHAT_TO_DO
        )
    data = manifest_path.read_bytes()
    try:
        signature = base64.b64decode(sig_path.read_text().strip(), validate=True)
        _verify_signature(public_key, signature, data)
    except (InvalidSignature, binascii.Error, ValueError) as exc:
        raise ArtifactVerificationError(
            f"{what}: the signature in {SIGNATURE_FILE} does not verify {MANIFEST_FILE} with the artifact public key "
            f"(fingerprint {key_fingerprint(public_key)}): the manifest was changed or signed with another key. "
            + WHAT_TO_DO
        ) from exc
    try:
        manifest = json.loads(data)
        expected: dict[str, str] = dict(manifest["files"])
        if manifest.get("format") != FORMAT or manifest.get("algorithm") != "sha256":
            raise ValueError(f"format {manifest.get('format')!r}, algorithm {manifest.get('algorithm')!r}")
    except (ValueError, KeyError, TypeError) as exc:
        raise ArtifactVerificationError(
            f"{what}: {MANIFEST_FILE} is signed but not a {FORMAT} manifest ({exc})"
        ) from exc
    actual = content_files(root)
    problems = [f"{rel} is missing" for rel in sorted(expected.keys() - actual.keys())]
    problems += [f"{rel} is not in the manifest (added)" for rel in sorted(actual.keys() - expected.keys())]
    size = 0
    for rel in sorted(expected.keys() & actual.keys()):
        size += actual[rel].stat().st_size
        got = sha256_file(actual[rel])
        if got != expected[rel]:
            problems.append(f"{rel} changed (sha256 {got[:16]}…, signed {expected[rel][:16]}…)")
    if problems:
        raise ArtifactVerificationError(
            f"{what}: files differ from the signed manifest: {'; '.join(problems)}. " + WHAT_TO_DO
        )
    return Verified(len(expected), size, time.monotonic() - started)
