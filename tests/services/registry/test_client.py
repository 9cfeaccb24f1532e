"""A refused credential (401) or permission (403) becomes an error that names the credential to use."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import PERMISSION_DENIED, UNAUTHENTICATED

from core import contracts
from services.registry.client import auth_refusal


def test_a_refused_write_names_the_release_bot_and_its_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(contracts.MLFLOW_USERNAME_VAR, contracts.REGISTRY_READER)
    exc = MlflowException("403 != 200. Response body: 'Permission denied'", error_code=PERMISSION_DENIED)
    err = auth_refusal(exc, "set alias candidate", write=True)
    assert err is not None
    text = str(err)
    assert "403" in text and contracts.REGISTRY_READER in text and "set alias candidate" in text
    assert f"{contracts.MLFLOW_USERNAME_VAR}={contracts.REGISTRY_RELEASE_BOT}" in text
    assert contracts.REGISTRY_USERS[contracts.REGISTRY_RELEASE_BOT] in text


def test_a_refused_credential_says_what_to_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(contracts.MLFLOW_USERNAME_VAR, raising=False)
    exc = MlflowException("401", error_code=UNAUTHENTICATED)
    text = str(auth_refusal(exc, "list the versions", write=False))
    assert "no credential was sent" in text and contracts.MLFLOW_PASSWORD_VAR in text


def test_other_failures_are_left_alone() -> None:
    assert auth_refusal(MlflowException("boom"), "read", write=False) is None
    assert auth_refusal(OSError("down"), "read", write=False) is None


def test_no_version_is_downloaded_without_a_key_to_verify_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from core import env
    from services.registry.client import RegistryError, download_version

    monkeypatch.delenv(env.ARTIFACT_PUBLIC_KEY.name, raising=False)
    with pytest.raises(RegistryError, match=env.ARTIFACT_PUBLIC_KEY.name):
        download_version(3, "m", cache_root=tmp_path)
