"""The MLflow server: the registry (versions, aliases, tags, webhooks), PostgreSQL backend, artifacts proxied to S3."""

from __future__ import annotations

from core import contracts, endpoints
from core.policy import policy
from infra.local import s3
from infra.local.paths import sub
from infra.local.supervisor import VENV_BIN, Program


def program() -> Program:
    port = policy().ports.mlflow
    env = {
        **s3.client_env(),
        "MLFLOW_ARTIFACTS_DESTINATION": f"s3://{contracts.ARTIFACT_BUCKET}",
        # Start-up ~13 s and ~0.6 GB instead of ~40 s and 2.7 GB (see docs/decisions).
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
        "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
        "MLFLOW_TRACKING_DIR": str(sub("mlflow")),
    }
    return Program(
        name="mlflow",
        command=[
            str(VENV_BIN / "mlflow"),
            "server",
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
        },
        priority=20,
        stopwaitsecs=20,
        startsecs=5,
        health_url=f"{endpoints.mlflow_url()}/health",
    )
