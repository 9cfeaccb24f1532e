"""The MLflow program: the basic-auth app on, its config private and in the secret store, no secret on its
command line or in its supervisor config."""

from __future__ import annotations

import configparser
from pathlib import Path

import pytest

from core import contracts


@pytest.fixture()
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MLP_STATE_DIR", str(tmp_path))
    return tmp_path


def test_mlflow_runs_the_basic_auth_app_with_a_private_config(state: Path) -> None:
    from infra.local import mlflow
    from infra.local.secrets import get_secret

    program = mlflow.program()
    assert program.command[program.command.index("--app-name") + 1] == "basic-auth"
    config_path = Path(program.env[contracts.MLFLOW_AUTH_CONFIG_VAR])
    assert config_path.parent == state / "secrets" and config_path.stat().st_mode & 0o777 == 0o600
    ini = configparser.ConfigParser()
    ini.read(config_path)
    auth = ini["mlflow"]
    assert auth["default_permission"] == "READ"
    assert auth["admin_username"] == contracts.REGISTRY_ADMIN
    assert "admin_password" not in auth  # reaches the server through its environment, resolved in the process
    assert auth["database_uri"].endswith("/mlflow_auth") and get_secret("postgres_password") in auth["database_uri"]
    assert int(auth["auth_cache_ttl_seconds"]) > 0
    conf = program.conf()
    for name in ("postgres_password", "mlflow_admin_password", "mlflow_flask_csrf_key"):
        assert get_secret(name) not in conf
    assert "{mlflow_admin_password}" in conf and contracts.MLFLOW_FLASK_SECRET_KEY_VAR in conf


def test_model_servers_read_the_registry_as_the_read_only_identity(state: Path) -> None:
    from infra.local.model_servers import model_server_program

    program = model_server_program(3, 19000)
    assert program.env[contracts.MLFLOW_USERNAME_VAR] == contracts.REGISTRY_MODEL_SERVER
    template = program.secret_env[contracts.MLFLOW_PASSWORD_VAR]
    assert template == "{" + contracts.REGISTRY_USERS[contracts.REGISTRY_MODEL_SERVER] + "}"
