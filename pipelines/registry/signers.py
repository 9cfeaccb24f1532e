"""Who signs a registered version's manifest (`services/registry/manifest.py`): one small interface, two signers,
and an explicit choice between them.

Locally the secret store's Ed25519 key signs. In the cluster's environments an AWS KMS key (`ECC_NIST_P256`,
created by the data stack, `kms:Sign` allowed to the in-cluster release runners' role only) signs with
`ECDSA_SHA_256`, and its private half never leaves KMS. Verifiers accept either (`MLP_ARTIFACT_PUBLIC_KEY`), so
the model server does not care which one signed.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any, Protocol

from core import env
from services.registry.manifest import public_key_text, sign_ed25519

KMS_KEY_SPEC = "ECC_NIST_P256"
KMS_ALGORITHM = "ECDSA_SHA_256"


class SigningError(RuntimeError):
    """The manifest could not be signed; the message says which signer and what to check."""


class Signer(Protocol):
    @property
    def name(self) -> str: ...

    def sign(self, data: bytes) -> bytes: ...

    def public_key(self) -> str:
        """The verification key, as `MLP_ARTIFACT_PUBLIC_KEY` holds it (base64 DER SubjectPublicKeyInfo)."""
        ...


@dataclass(frozen=True)
class LocalKeySigner:
    private_pem: str

    @property
    def name(self) -> str:
        return "an Ed25519 key file (the local secret store's)"

    def sign(self, data: bytes) -> bytes:
        return sign_ed25519(self.private_pem, data)

    def public_key(self) -> str:
        return public_key_text(self.private_pem)


@dataclass(frozen=True)
class KmsSigner:
    """ECDSA P-256 by a KMS key. KMS signs the manifest's SHA-256 (`MessageType=DIGEST`: a manifest outgrows the
    4 KB that KMS accepts as a raw message); the DER signature then verifies over the manifest's bytes."""

    key_id: str
    client: Any  # a boto3 KMS client

    @property
    def name(self) -> str:
        return f"KMS key {self.key_id}"

    def sign(self, data: bytes) -> bytes:
        digest = hashlib.sha256(data).digest()
        response = self._call("sign", KeyId=self.key_id, Message=digest, MessageType="DIGEST",
                              SigningAlgorithm=KMS_ALGORITHM)  # fmt: skip
        return bytes(response["Signature"])

    def public_key(self) -> str:
        response = self._call("get_public_key", KeyId=self.key_id)
        if response.get("KeySpec") != KMS_KEY_SPEC or KMS_ALGORITHM not in response.get("SigningAlgorithms", []):
            raise SigningError(
                f"{self.name} is a {response.get('KeySpec')} key signing {response.get('SigningAlgorithms')}; "
                f"artifact manifests need {KMS_KEY_SPEC} with {KMS_ALGORITHM} (the data stack's signing key)"
            )
        return base64.b64encode(response["PublicKey"]).decode()

    def _call(self, operation: str, **params: Any) -> dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            result: dict[str, Any] = getattr(self.client, operation)(**params)
        except (BotoCoreError, ClientError) as exc:
            raise SigningError(
                f"{self.name}: kms:{operation.replace('_', ' ').title().replace(' ', '')} failed ({exc}). Only the "
                "in-cluster release runners may sign: run the registration there (docs/security.md)"
            ) from exc
        return result


def signer_from_env() -> Signer:
    """The KMS signer when `MLP_ARTIFACT_SIGNING_KMS_KEY` names a key, else the key in the file
    `MLP_ARTIFACT_SIGNING_KEY_FILE` names (the local environment's); neither set is an error, never a new key."""
    key_id = env.ARTIFACT_SIGNING_KMS_KEY.get()
    if key_id:
        import boto3

        return KmsSigner(key_id, boto3.client("kms"))
    key_file = env.ARTIFACT_SIGNING_KEY_FILE.get()
    if key_file is None:
        raise SigningError(
            f"no signing key: set {env.ARTIFACT_SIGNING_KMS_KEY.name} (the cluster's KMS key) or "
            f"{env.ARTIFACT_SIGNING_KEY_FILE.name} (a PEM file; `mlp` commands set the local environment's)"
        )
    try:
        return LocalKeySigner(key_file.read_text().strip())
    except OSError as exc:
        raise SigningError(f"cannot read the signing key {key_file}: {exc}") from exc
