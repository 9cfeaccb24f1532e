"""The registry-webhook receiver as a program of the local stack, and the MLflow webhook that calls it.

The receiver itself (`services/webhook/app.py`) ships in an image; here it runs under supervisord with its state
and logs in this environment's folders, its HMAC secret and Alertmanager's bearer token from the secret store.
Alertmanager (`infra/local/alertmanager.py`) delivers to `alerts_url()`; `notifications_log()` is what it logged.
`register()` (for `mlp release webhook register`) creates or updates the MLflow webhook that calls the receiver when
an alias is set.
Idempotent: an existing webhook of the same name is updated (URL, events, secret, status) instead of duplicated.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from core import contracts, endpoints, env
from infra.local.paths import logs_dir, sub
from infra.local.secrets import get_secret
from infra.local.supervisor import VENV_BIN, Program
from services.webhook.alerts import NOTIFICATION_LOG

if TYPE_CHECKING:
    from mlflow.entities.webhook import Webhook
    from mlflow.tracking import MlflowClient

WEBHOOK_SECRET_NAME = "mlflow_webhook_secret"
WEBHOOK_NAME = "mlp-release-on-promotion"


def receiver_url() -> str:
    return f"{endpoints.webhook_url()}{contracts.WEBHOOK_ROUTE}"


def alerts_url() -> str:
    """Where the local Alertmanager delivers its notifications."""
    return f"{endpoints.webhook_url()}{contracts.ALERTMANAGER_ROUTE}"


def state_dir() -> Path:
    """The receiver's state folder: delivery ledger, events log, notification log, the actions' pause switch."""
    return sub("webhook")


def notifications_log() -> Path:
    """The notification log the receiver appends Alertmanager's deliveries to (read by `mlp alerts`)."""
    return state_dir() / NOTIFICATION_LOG


def events_log() -> Path:
    """The receiver's decisions, one JSON line each (accepted, dispatched, paused, rejected ...)."""
    return state_dir() / "events.jsonl"


def program() -> Program:
    return Program(
        name="webhook",
        command=[
            str(VENV_BIN / "python"),
            "-m",
            "services.webhook.app",
            "--state-dir",
            str(sub("webhook")),
            "--logs-dir",
            str(logs_dir()),
        ],
        # The HMAC secret and Alertmanager's token are resolved from the secret store inside the process only.
        secret_env={
            env.WEBHOOK_SECRET.name: "{" + WEBHOOK_SECRET_NAME + "}",
            env.ALERTMANAGER_TOKEN.name: "{" + contracts.ALERT_WEBHOOK_TOKEN_SECRET + "}",
        },
        priority=40,
        health_url=f"{endpoints.webhook_url()}{contracts.HEALTH_ROUTE}",
        stopwaitsecs=10,
    )


# ---------------------------------------------------------------- the MLflow side (MLflow loads only when used)


def _client() -> MlflowClient:
    from services.registry.client import check_mlflow, mlflow_client

    check_mlflow()
    return mlflow_client()


def _events() -> list[Any]:
    from mlflow.entities.webhook import WebhookAction, WebhookEntity, WebhookEvent

    return [WebhookEvent(WebhookEntity.MODEL_VERSION_ALIAS, WebhookAction.CREATED)]


def find(name: str = WEBHOOK_NAME) -> Webhook | None:
    client = _client()
    token: str | None = None
    while True:
        page = client.list_webhooks(max_results=100, page_token=token)
        for hook in page:
            if hook.name == name:
                return hook
        token = page.token
        if not token:
            return None


def register(url: str | None = None, secret: str | None = None) -> Webhook:
    """The local receiver with the local secret store's secret by default; another receiver (the cluster's) with
    the secret its Secret holds."""
    client = _client()
    url = url or receiver_url()
    secret = secret or get_secret(WEBHOOK_SECRET_NAME)
    existing = find()
    if existing is None:
        return client.create_webhook(
            name=WEBHOOK_NAME,
            url=url,
            events=_events(),
            description="Starts a canary release when the candidate alias is set (services/webhook)",
            secret=secret,
            status="ACTIVE",
        )
    return client.update_webhook(existing.webhook_id, url=url, events=_events(), secret=secret, status="ACTIVE")


def send_test() -> dict[str, Any]:
    hook = find()
    if hook is None:
        return {"success": False, "error": "no webhook registered: run `mlp release webhook register`"}
    result = _client().test_webhook(hook.webhook_id)
    return {
        "success": result.success,
        "status": result.response_status,
        "body": (result.response_body or "")[:200],
        "error": result.error_message,
    }
