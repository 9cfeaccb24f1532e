"""The MLflow server: the registry (versions, aliases, tags, webhooks), PostgreSQL backend, artifacts proxied to S3.

It runs MLflow's basic-auth app (`--app-name basic-auth`): every request but `/health` needs a user and password,
anonymous ones get 401. Its users and permissions live in their own PostgreSQL database (`mlflow_auth`); its config
file (`MLFLOW_AUTH_CONFIG_PATH`) holds that database's URI, so it is written into the secret store (0600), and the
admin's first-start password reaches the server only through its environment, resolved inside the process.
Users and permissions are set up by `infra.local.registry_auth` (docs/security-registry.md).
"""

from __future__ import annotations

from pathlib import Path

from core import contracts, endpoints
from core.policy import policy
from infra.local import s3
from infra.local.paths import sub
from infra.local.postgres import AUTH_DATABASE
from infra.local.secrets import get_secret, put_secret_file
from infra.local.supervisor import VENV_BIN, Program

AUTH_CONFIG_FILE = "mlflow_auth.ini"  # in the secret store: it names the auth database with its password

# Authenticated users may read (the model servers, the drift check, dashboards need nothing more); writing a
# registered model or an experiment needs a grant (the release bot's MANAGE); anonymous requests get 401.
# Decision: docs/decisions/0140-registry-default-permission-read.md
DEFAULT_PERMISSION = "READ"
AUTH_CACHE_TTL_S = 300


def auth_config_text(db_password: str) -> str:
    return "\n".join(
        [
            "[mlflow]",
            f"default_permission = {DEFAULT_PERMISSION}",
            f"database_uri = {endpoints.postgres_dsn(password=db_password, database=AUTH_DATABASE)}",
            f"admin_username = {contracts.REGISTRY_ADMIN}",
            "authorization_function = mlflow.server.auth:authenticate_request_basic_auth",
            "grant_default_workspace_access = false",
            # A password check is PBKDF2 with 1,000,000 rounds (~1 s per request on this shared 2-core machine);
            # a verified (user, password) is cached in the single worker for this long. Password changes through
            # the API invalidate it at once (docs/decisions/0141-registry-auth-cache.md).
            f"auth_cache_ttl_seconds = {AUTH_CACHE_TTL_S}",
            "auth_cache_max_size = 100",
            "",
        ]
    )


def write_auth_config() -> Path:
    """The auth app's ini, written atomically with mode 0600 into the secret store (idempotent)."""
    return put_secret_file(AUTH_CONFIG_FILE, auth_config_text(get_secret("postgres_password")))


def program() -> Program:
    port = policy().ports.mlflow
    auth_config = write_auth_config()
    env = {
        **s3.client_env(),
        "MLFLOW_ARTIFACTS_DESTINATION": f"s3://{contracts.ARTIFACT_BUCKET}",
        # Start-up ~13 s and ~0.6 GB instead of ~40 s and 2.7 GB (see docs/decisions).
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
        "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
        "MLFLOW_TRACKING_DIR": str(sub("mlflow")),
        contracts.MLFLOW_AUTH_CONFIG_VAR: str(auth_config),
    }
    return Program(
        name="mlflow",
        command=[
            str(VENV_BIN / "mlflow"),
            "server",
            "--app-name",
            "basic-auth",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--serve-artifacts",
        ],
        env=env,
        secret_env={
            **s3.SECRET_ENV,
            "MLFLOW_BACKEND_STORE_URI": endpoints.postgres_dsn(password="{postgres_password}"),
            "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY": "{mlflow_fernet_key}",
            # The auth app's CSRF key for its Flask forms: static across restarts, so it is a stored secret.
            contracts.MLFLOW_FLASK_SECRET_KEY_VAR: "{mlflow_flask_csrf_key}",
            # Used once, when the auth database has no admin yet; rotation goes through the API.
            contracts.MLFLOW_AUTH_ADMIN_PASSWORD_VAR: "{" + contracts.REGISTRY_USERS[contracts.REGISTRY_ADMIN] + "}",
        },
        priority=20,
        stopwaitsecs=20,
        startsecs=5,
        health_url=f"{endpoints.mlflow_url()}/health",
    )
