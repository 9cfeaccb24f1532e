"""The signed manifest: what it covers, and every way a directory can fail to match it."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from services.registry import manifest as m


@pytest.fixture(scope="module")
def key() -> str:
    return m.new_private_key_pem()


def _model(root: Path) -> Path:
    (root / "artifacts" / "int8").mkdir(parents=True)
    (root / "MLmodel").write_text("flavors: {}\n")
    (root / "artifacts" / "int8" / "model.onnx").write_bytes(bytes(range(256)) * 64)
    (root / "artifacts" / "int8" / "model_config.json").write_text('{"variant": "int8"}')
    return root


def test_manifest_lists_every_file_sorted_with_its_sha256(tmp_path: Path, key: str) -> None:
    root = _model(tmp_path)
    written = m.sign_dir(root, partial(m.sign_ed25519, key))
    on_disk = json.loads((root / m.MANIFEST_FILE).read_text())
    assert on_disk == written
    assert list(on_disk["files"]) == ["MLmodel", "artifacts/int8/model.onnx", "artifacts/int8/model_config.json"]
    assert on_disk["files"]["MLmodel"] == m.sha256_file(root / "MLmodel")
    verified = m.verify_dir(root, m.public_key_text(key), "v1")
    assert verified.files == 3 and verified.bytes == 16384 + 12 + 19


def test_the_local_cache_mark_is_not_content(tmp_path: Path, key: str) -> None:
    root = _model(tmp_path)
    m.sign_dir(root, partial(m.sign_ed25519, key))
    (root / ".complete").touch()
    assert m.verify_dir(root, m.public_key_text(key), "v1").files == 3


def _change_a_byte(root: Path) -> None:
    onnx = root / "artifacts/int8/model.onnx"
    onnx.write_bytes(b"\xff" + onnx.read_bytes()[1:])


def _remove_a_file(root: Path) -> None:
    (root / "artifacts/int8/model_config.json").unlink()


def _add_a_file(root: Path) -> None:
    (root / "artifacts/int8/extra.py").write_text("import os")


def _drop_the_signature(root: Path) -> None:
    (root / m.SIGNATURE_FILE).unlink()


def _drop_the_manifest(root: Path) -> None:
    (root / m.MANIFEST_FILE).unlink()


@pytest.mark.parametrize(
    ("tamper", "said"),
    [
        (_change_a_byte, "artifacts/int8/model.onnx changed"),
        (_remove_a_file, "artifacts/int8/model_config.json is missing"),
        (_add_a_file, "artifacts/int8/extra.py is not in the manifest"),
        (_drop_the_signature, "manifest.sig missing"),
        (_drop_the_manifest, "manifest.json missing"),
    ],
    ids=["changed-byte", "missing-file", "added-file", "no-signature", "no-manifest"],
)
def test_a_directory_that_differs_from_its_manifest_is_refused_by_name(
    tmp_path: Path, key: str, tamper: Callable[[Path], None], said: str
) -> None:
    root = _model(tmp_path)
    m.sign_dir(root, partial(m.sign_ed25519, key))
    tamper(root)
    with pytest.raises(m.ArtifactVerificationError) as err:
        m.verify_dir(root, m.public_key_text(key), "review-polarity-classifier v3")
    assert said in str(err.value)
    assert "review-polarity-classifier v3" in str(err.value) and "re-register" in str(err.value)


def test_a_manifest_rewritten_to_match_changed_files_fails_the_signature(tmp_path: Path, key: str) -> None:
    root = _model(tmp_path)
    m.sign_dir(root, partial(m.sign_ed25519, key))
    (root / "MLmodel").write_text("flavors: {evil: true}\n")
    (root / m.MANIFEST_FILE).write_bytes(m.manifest_bytes(m.build_manifest(root)))  # digests now match, signature not
    with pytest.raises(m.ArtifactVerificationError, match=r"does not verify manifest\.json"):
        m.verify_dir(root, m.public_key_text(key), "v1")


def test_a_manifest_signed_with_another_key_is_refused(tmp_path: Path, key: str) -> None:
    root = _model(tmp_path)
    m.sign_dir(root, partial(m.sign_ed25519, m.new_private_key_pem()))
    with pytest.raises(m.ArtifactVerificationError, match="signed with another key") as err:
        m.verify_dir(root, m.public_key_text(key), "v1")
    assert m.key_fingerprint(m.public_key_text(key)) in str(err.value)


def test_during_a_key_rotation_either_key_verifies_and_a_third_is_refused(tmp_path: Path, key: str) -> None:
    old, new = key, m.new_private_key_pem()
    both = f"{m.public_key_text(new)}, {m.public_key_text(old)}"
    for i, signer in enumerate((old, new)):
        root = _model(tmp_path / f"signed-by-{i}")
        m.sign_dir(root, partial(m.sign_ed25519, signer))
        assert m.verify_dir(root, both, "v1").files == 3
    with pytest.raises(m.ArtifactVerificationError, match="signed with another key") as err:
        m.verify_dir(root, m.public_key_text(m.new_private_key_pem()), "v1")
    assert "/" not in m.key_fingerprint(m.public_key_text(old)) and "/" in m.key_fingerprint(both)
    assert "fingerprint" in str(err.value)


def test_an_unreadable_public_key_is_a_clear_error(tmp_path: Path, key: str) -> None:
    root = _model(tmp_path)
    m.sign_dir(root, partial(m.sign_ed25519, key))
    with pytest.raises(m.ArtifactVerificationError, match="not base64 DER"):
        m.verify_dir(root, "not a key!", "v1")


def test_an_ecdsa_p256_signature_as_kms_makes_it_verifies_through_the_same_interface(tmp_path: Path) -> None:
    """The cluster design: KMS ECC_NIST_P256 signs ECDSA_SHA_256 (DER signature); GetPublicKey gives DER SPKI."""
    root = _model(tmp_path)
    kms_key = ec.generate_private_key(ec.SECP256R1())
    data = m.manifest_bytes(m.build_manifest(root))
    (root / m.MANIFEST_FILE).write_bytes(data)
    (root / m.SIGNATURE_FILE).write_text(base64.b64encode(kms_key.sign(data, ec.ECDSA(hashes.SHA256()))).decode())
    public = base64.b64encode(
        kms_key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    ).decode()
    assert m.verify_dir(root, public, "v1").files == 3
    with pytest.raises(m.ArtifactVerificationError, match="signed with another key"):
        m.verify_dir(root, m.public_key_text(m.new_private_key_pem()), "v1")


def test_a_symbolic_link_is_refused(tmp_path: Path, key: str) -> None:
    root = _model(tmp_path)
    (root / "link").symlink_to(root / "MLmodel")
    with pytest.raises(m.ArtifactVerificationError, match="symbolic link"):
        m.build_manifest(root)
