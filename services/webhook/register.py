"""`mlp release webhook register`: the MLflow webhook that calls the receiver when an alias is set. Idempotent:
an existing webhook of the same name is updated (URL, events, secret, status) instead of duplicated."""

from __future__ import annotations

from typing import Any

from mlflow.entities.webhook import Webhook, WebhookAction, WebhookEntity, WebhookEvent

from infra.local.secrets import get_secret
from pipelines.registry.client import check_mlflow, mlflow_client
from services.webhook.local import WEBHOOK_SECRET_NAME, receiver_url

WEBHOOK_NAME = "mlp-release-on-promotion"
EVENTS = [WebhookEvent(WebhookEntity.MODEL_VERSION_ALIAS, WebhookAction.CREATED)]


def find(name: str = WEBHOOK_NAME) -> Webhook | None:
    client = mlflow_client()
    token: str | None = None
    while True:
        page = client.list_webhooks(max_results=100, page_token=token)
        for hook in page:
            if hook.name == name:
                return hook
        token = page.token
        if not token:
            return None


def register(url: str | None = None) -> Webhook:
    check_mlflow()
    client = mlflow_client()
    url = url or receiver_url()
    secret = get_secret(WEBHOOK_SECRET_NAME)
    existing = find()
    if existing is None:
        return client.create_webhook(
            name=WEBHOOK_NAME,
            url=url,
            events=list(EVENTS),
            description="Starts a canary release when the candidate alias is set (services/webhook)",
            secret=secret,
            status="ACTIVE",
        )
    return client.update_webhook(existing.webhook_id, url=url, events=list(EVENTS), secret=secret, status="ACTIVE")


def send_test() -> dict[str, Any]:
    hook = find()
    if hook is None:
        return {"success": False, "error": "no webhook registered: run `mlp release webhook register`"}
    result = mlflow_client().test_webhook(hook.webhook_id)
    return {
        "success": result.success,
        "status": result.response_status,
        "body": (result.response_body or "")[:200],
        "error": result.error_message,
    }
