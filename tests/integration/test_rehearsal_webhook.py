"""The registry-webhook receiver's rehearsal: its image built from the repository, its rendered Deployment run with
`podman kube play`, the local MLflow delivering to it (the signature MLflow computes verifies in the pod), a
promotion dispatching the release workflow exactly once to a stand-in for GitHub's API, and a drift alert from
Alertmanager's action route dispatching the retraining workflow exactly once."""

from __future__ import annotations

import json
import secrets
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from core import contracts
from core.policy import policy
from infra.containers.images import MODEL_SERVER, WEBHOOK_RECEIVER, build
from pipelines.rehearsal import webhook_receiver
from pipelines.rehearsal.github_standin import GitHubStandIn
from pipelines.rehearsal.pods import down
from pipelines.rehearsal.webhook_receiver import ReceiverRun
from services.webhook.dispatch import RETRAIN_EVENT_TYPE
from services.webhook.verify import sign

pytestmark = pytest.mark.integration
SECRET = secrets.token_urlsafe(24)  # this module's throwaway; the cluster's comes from Secrets Manager


@pytest.fixture(scope="module")
def github() -> Iterator[GitHubStandIn]:
    with GitHubStandIn() as standin:
        yield standin


@pytest.fixture(scope="module")
def receiver(local_env: None, registered_versions: dict[str, int], github: GitHubStandIn) -> Iterator[ReceiverRun]:
    run = webhook_receiver.play(
        registered_versions["fp32"], build(MODEL_SERVER), build(WEBHOOK_RECEIVER), SECRET, github.url
    )
    yield run
    down(run.kube_file)


def deliver(run: ReceiverRun, body: str, delivery_id: str, secret: str = SECRET) -> httpx.Response:
    stamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        contracts.MLFLOW_DELIVERY_ID_HEADER: delivery_id,
        contracts.MLFLOW_TIMESTAMP_HEADER: stamp,
        contracts.MLFLOW_SIGNATURE_HEADER: sign(secret, delivery_id, stamp, body),
    }
    return httpx.post(run.delivery_url, content=body, headers=headers, timeout=10)


def promotion(version: int) -> str:
    data = {"name": policy().release.default_model, "alias": policy().release.candidate_alias, "version": str(version)}
    return json.dumps({"entity": "model_version_alias", "action": "created", "timestamp": "", "data": data})


def test_ready_as_the_probes_expect(receiver: ReceiverRun) -> None:
    probe = receiver.rendered["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
    assert httpx.get(f"{receiver.url}{probe['httpGet']['path']}", timeout=5).status_code == 200
    assert all(change.why for change in receiver.changes)


def test_mlflow_delivers_to_the_pod_and_only_the_shared_secret_verifies(
    receiver: ReceiverRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MLflow's own test delivery (an example alias event of another model): signed with the shared secret it is
    acknowledged (200, ignored); signed with another secret it is refused (401)."""
    from mlflow.entities.webhook import WebhookAction, WebhookEntity, WebhookEvent

    from infra.local import registry_auth
    from services.registry.client import mlflow_client

    # MLflow lets only its admin manage webhooks.
    monkeypatch.setenv(contracts.MLFLOW_USERNAME_VAR, contracts.REGISTRY_ADMIN)
    monkeypatch.setenv(contracts.MLFLOW_PASSWORD_VAR, registry_auth.password(contracts.REGISTRY_ADMIN))

    client = mlflow_client()
    events = [WebhookEvent(WebhookEntity.MODEL_VERSION_ALIAS, WebhookAction.CREATED)]
    hooks = {
        name: client.create_webhook(name=f"rehearsal-{name}-{uuid.uuid4().hex[:8]}", url=receiver.delivery_url,
                                    events=events, secret=secret, status="ACTIVE")
        for name, secret in (("shared", SECRET), ("other", secrets.token_urlsafe(24)))
    }  # fmt: skip
    try:
        genuine = client.test_webhook(hooks["shared"].webhook_id)
        forged = client.test_webhook(hooks["other"].webhook_id)
    finally:
        for hook in hooks.values():
            client.delete_webhook(hook.webhook_id)
    assert genuine.success and genuine.response_status == 200, genuine
    assert json.loads(genuine.response_body or "{}").get("status") == "ignored", genuine
    assert forged.response_status == 401 and not forged.success, forged


def test_a_promotion_dispatches_the_release_workflow_exactly_once(receiver: ReceiverRun, github: GitHubStandIn) -> None:
    before = len(github.calls)
    delivery = str(uuid.uuid4())
    accepted = deliver(receiver, promotion(7), delivery)
    assert accepted.status_code == 202, accepted.text
    (call,) = github.calls[before:]
    assert call.path == f"/repos/{webhook_receiver.REPOSITORY}/dispatches"
    assert call.authorization == "Bearer rehearsal-token"
    assert call.body["client_payload"]["version"] == "7"
    assert call.body["client_payload"]["model"] == policy().release.default_model
    replay = deliver(receiver, promotion(7), delivery)
    assert replay.status_code == 200 and replay.json()["status"] == "duplicate"
    assert len(github.calls) == before + 1, "a replayed delivery dispatched a second release"
    assert deliver(receiver, promotion(7), str(uuid.uuid4()), secret="not-the-secret").status_code == 401


def drift_alert(version: int) -> dict[str, object]:
    labels = {
        "alertname": contracts.ALERT_DRIFT,
        "severity": "ticket",
        "model_name": policy().release.default_model,
        "model_version": str(version),
    }
    alert = {
        "status": "firing",
        "labels": labels,
        "annotations": {contracts.DRIFT_SCORE_ANNOTATION: "0.9"},
        "startsAt": "2026-12-02T20:00:00Z",
        "fingerprint": uuid.uuid4().hex[:16],
    }
    return {"version": "4", "groupKey": "{}", "status": "firing", "receiver": contracts.RECEIVER_ACT, "alerts": [alert]}


def test_a_drift_alert_dispatches_the_retraining_workflow_exactly_once(
    receiver: ReceiverRun, github: GitHubStandIn
) -> None:
    """As the cluster's Alertmanager delivers it: bearer token from the rendered Secret reference, the act receiver."""
    url = f"{receiver.url}{contracts.ALERTMANAGER_ROUTE}"
    body = drift_alert(7)
    bearer = {contracts.AUTHORIZATION_HEADER: f"{contracts.BEARER_SCHEME} {webhook_receiver.ALERTMANAGER_TOKEN}"}
    forged = {contracts.AUTHORIZATION_HEADER: f"{contracts.BEARER_SCHEME} forged"}
    before = len(github.calls)
    assert httpx.post(url, json=body, headers=forged, timeout=10).status_code == 401
    assert len(github.calls) == before, "a forged alert dispatched something"
    accepted = httpx.post(url, json=body, headers=bearer, timeout=10)
    assert accepted.status_code == 202, accepted.text
    (call,) = github.calls[before:]
    assert call.body["event_type"] == RETRAIN_EVENT_TYPE
    assert call.body["client_payload"]["version"] == "7" and call.body["client_payload"]["drift_score"] == "0.9"
    again = httpx.post(url, json=body, headers=bearer, timeout=10)  # Alertmanager's repeat of the same alert
    assert again.status_code == 200 and len(github.calls) == before + 1
