"""The two manifest signers against the one verifier. KMS cannot run here: a real boto3 KMS client with botocore's
Stubber checks every request against the KMS API model and answers with a signature made the way KMS makes it
(ECDSA P-256 over the SHA-256 digest sent), so what is tested is this side of the contract: what is sent, and that
the answer verifies the manifest through `MLP_ARTIFACT_PUBLIC_KEY`."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils

from pipelines.registry import signers
from pipelines.registry.signers import KmsSigner, LocalKeySigner, SigningError
from services.registry import manifest as m

KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


@pytest.fixture
def kms() -> Iterator[tuple[Stubber, object]]:
    client = boto3.client("kms", region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")
    with Stubber(client) as stub:
        yield stub, client
        stub.assert_no_pending_responses()


def _model(root: Path) -> Path:
    (root / "artifacts").mkdir(parents=True)
    (root / "MLmodel").write_text("flavors: {}\n")
    for i in range(80):  # a manifest larger than the 4 KB KMS takes as a raw message
        (root / "artifacts" / f"file_{i:03}.py").write_text(f"x = {i}\n")
    return root


def _public_der(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def test_the_kms_signer_sends_the_manifests_digest_and_its_answer_verifies(kms, tmp_path: Path) -> None:
    stub, client = kms
    root = _model(tmp_path)
    data = m.manifest_bytes(m.build_manifest(root))
    assert len(data) > 4096
    in_kms = ec.generate_private_key(ec.SECP256R1())
    digest = hashlib.sha256(data).digest()
    signature = in_kms.sign(digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))  # what KMS does with a DIGEST
    expected = {"KeyId": KEY_ARN, "Message": digest, "MessageType": "DIGEST", "SigningAlgorithm": "ECDSA_SHA_256"}
    stub.add_response("sign", {"KeyId": KEY_ARN, "Signature": signature, "SigningAlgorithm": "ECDSA_SHA_256"}, expected)
    stub.add_response(
        "get_public_key",
        {
            "KeyId": KEY_ARN,
            "PublicKey": _public_der(in_kms),
            "KeySpec": "ECC_NIST_P256",
            "KeyUsage": "SIGN_VERIFY",
            "SigningAlgorithms": ["ECDSA_SHA_256"],
        },
        {"KeyId": KEY_ARN},
    )
    signer = KmsSigner(KEY_ARN, client)
    m.sign_dir(root, signer.sign)
    assert m.verify_dir(root, signer.public_key(), "v7").files == 81
    with pytest.raises(m.ArtifactVerificationError, match="signed with another key"):
        m.verify_dir(root, m.public_key_text(m.new_private_key_pem()), "v7")


def test_a_refused_kms_sign_says_who_may_sign(kms) -> None:
    stub, client = kms
    stub.add_client_error("sign", service_error_code="AccessDeniedException", service_message="not allowed")
    with pytest.raises(SigningError, match=r"kms:Sign failed.*Only the in-cluster release runners may sign"):
        KmsSigner(KEY_ARN, client).sign(b"manifest")


def test_a_kms_key_of_another_kind_is_refused_before_anything_is_signed(kms) -> None:
    stub, client = kms
    stub.add_response(
        "get_public_key",
        {"KeyId": KEY_ARN, "PublicKey": b"\x30", "KeySpec": "RSA_2048", "SigningAlgorithms": ["RSASSA_PSS_SHA_256"]},
    )
    with pytest.raises(SigningError, match="manifests need ECC_NIST_P256 with ECDSA_SHA_256"):
        KmsSigner(KEY_ARN, client).public_key()


def test_the_signer_is_chosen_by_the_kms_key_setting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pem = m.new_private_key_pem()
    (tmp_path / "key.pem").write_text(pem)
    monkeypatch.delenv("MLP_ARTIFACT_SIGNING_KMS_KEY", raising=False)
    monkeypatch.delenv("MLP_ARTIFACT_SIGNING_KEY_FILE", raising=False)
    with pytest.raises(SigningError, match=r"MLP_ARTIFACT_SIGNING_KMS_KEY .* or MLP_ARTIFACT_SIGNING_KEY_FILE"):
        signers.signer_from_env()  # never a key made up on the spot: its signatures would verify nowhere
    monkeypatch.setenv("MLP_ARTIFACT_SIGNING_KEY_FILE", str(tmp_path / "missing.pem"))
    with pytest.raises(SigningError, match=r"missing\.pem"):
        signers.signer_from_env()
    monkeypatch.setenv("MLP_ARTIFACT_SIGNING_KEY_FILE", str(tmp_path / "key.pem"))
    local = signers.signer_from_env()
    assert isinstance(local, LocalKeySigner) and local.public_key() == m.public_key_text(pem)
    monkeypatch.setenv("MLP_ARTIFACT_SIGNING_KMS_KEY", KEY_ARN)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    chosen = signers.signer_from_env()
    assert isinstance(chosen, KmsSigner) and chosen.key_id == KEY_ARN


def test_the_signing_key_command_prints_the_local_public_key_and_names_a_kms_failure(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from infra.local.secrets import ARTIFACT_SIGNING_KEY, get_secret
    from pipelines.commands.model import app

    monkeypatch.setenv("MLP_STATE_DIR", str(tmp_path))
    monkeypatch.delenv("MLP_ARTIFACT_SIGNING_KMS_KEY", raising=False)
    monkeypatch.delenv("MLP_ARTIFACT_SIGNING_KEY_FILE", raising=False)
    pem = get_secret(ARTIFACT_SIGNING_KEY)
    result = CliRunner().invoke(app, ["signing-key"])
    assert result.exit_code == 0 and result.output.strip() == m.public_key_text(pem)

    def refused(self: KmsSigner) -> str:
        raise SigningError("kms:GetPublicKey failed (AccessDenied)")

    monkeypatch.setenv("MLP_ARTIFACT_SIGNING_KMS_KEY", KEY_ARN)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setattr(KmsSigner, "public_key", refused)
    result = CliRunner().invoke(app, ["signing-key"])
    assert result.exit_code == 1 and "GetPublicKey failed" in result.output
