"""Programs this area adds to the local stack (see infra/local/stack.py): the registry-webhook receiver."""

from __future__ import annotations

from core import env
from core.policy import policy
from infra.local import endpoints
from infra.local.supervisor import VENV_BIN, Program

WEBHOOK_SECRET_NAME = "mlflow_webhook_secret"
RECEIVER_PATH = "/mlflow"


def receiver_url() -> str:
    return f"{endpoints.webhook_url()}{RECEIVER_PATH}"


def programs() -> list[Program]:
    return [
        Program(
            name="webhook",
            command=[str(VENV_BIN / "python"), "-m", "services.webhook.app"],
            # The HMAC secret is resolved from the secret store inside the process only.
            secret_env={env.WEBHOOK_SECRET.name: "{" + WEBHOOK_SECRET_NAME + "}"},
            priority=40,
            health_url=f"{endpoints.webhook_url()}/healthz",
            stopwaitsecs=10,
        )
    ]


def port() -> int:
    return policy().ports.webhook
