"""Which registry identity a process uses: an explicit credential wins; otherwise the one asked for, from the store."""

from __future__ import annotations

from pathlib import Path

import pytest

from core import contracts


@pytest.fixture(autouse=True)
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MLP_STATE_DIR", str(tmp_path))
    return tmp_path


def test_the_identity_asked_for_comes_from_the_secret_store() -> None:
    from infra.local.registry_auth import password, use_identity

    environ: dict[str, str] = {}
    assert use_identity(contracts.REGISTRY_RELEASE_BOT, environ) == contracts.REGISTRY_RELEASE_BOT
    assert environ[contracts.MLFLOW_USERNAME_VAR] == contracts.REGISTRY_RELEASE_BOT
    assert environ[contracts.MLFLOW_PASSWORD_VAR] == password(contracts.REGISTRY_RELEASE_BOT)
    assert password(contracts.REGISTRY_RELEASE_BOT) != password(contracts.REGISTRY_READER)


def test_a_process_that_may_register_signs_with_the_key_of_the_public_half_it_verifies_with() -> None:
    from infra.local.registry_auth import use_identity
    from services.registry.manifest import public_key_text

    environ: dict[str, str] = {}
    use_identity(contracts.REGISTRY_RELEASE_BOT, environ)
    key_file = Path(environ["MLP_ARTIFACT_SIGNING_KEY_FILE"])
    assert key_file.stat().st_mode & 0o077 == 0, "the private key is readable by its owner only"
    assert public_key_text(key_file.read_text()) == environ["MLP_ARTIFACT_PUBLIC_KEY"]
    kms = {"MLP_ARTIFACT_SIGNING_KMS_KEY": "alias/mlp-artifacts"}
    use_identity(contracts.REGISTRY_RELEASE_BOT, kms)
    assert "MLP_ARTIFACT_SIGNING_KEY_FILE" not in kms, "a KMS key set is never overridden by a local file"


def test_an_explicit_credential_is_never_replaced() -> None:
    from infra.local.registry_auth import use_identity

    environ = {contracts.MLFLOW_USERNAME_VAR: "someone", contracts.MLFLOW_PASSWORD_VAR: "theirs"}
    assert use_identity(contracts.REGISTRY_RELEASE_BOT, environ) == "someone"
    assert environ[contracts.MLFLOW_PASSWORD_VAR] == "theirs"


def test_an_unknown_user_is_refused_with_the_known_ones_named() -> None:
    from infra.local.registry_auth import RegistryAuthError, password

    with pytest.raises(RegistryAuthError, match=contracts.REGISTRY_READER):
        password("mallory")
