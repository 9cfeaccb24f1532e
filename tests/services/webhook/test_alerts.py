"""Alertmanager deliveries to the receiver: only the bearer token of the secret store is accepted, a refused
delivery writes nothing, an accepted one is on disk in the notification log before the answer."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from core import contracts
from services.webhook import alerts
from services.webhook.app import ReceiverConfig, create_app
from services.webhook.deliveries import DeliveryLedger
from tests.services.webhook.test_receiver import RecordingDispatcher

TOKEN = "am-token-for-tests"
ROUTE = contracts.ALERTMANAGER_ROUTE


def payload(alertname: str = contracts.ALERT_DRIFT, receiver: str = contracts.RECEIVER_TICKET) -> dict[str, object]:
    """What Alertmanager 0.25 posts (webhook payload version 4), trimmed to the fields it always sends."""
    return {
        "version": "4",
        "groupKey": '{}:{model_name="news", model_version="3"}',
        "status": "firing",
        "receiver": receiver,
        "groupLabels": {"model_name": "news", "model_version": "3"},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://127.0.0.1:9093",
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": alertname, "severity": "ticket", "model_name": "news", "model_version": "3"},
                "annotations": {"summary": "drift", "runbook_url": "runbooks/model-drift-detected.md"},
                "startsAt": "2026-12-02T15:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "fingerprint": "abc123",
            }
        ],
    }


def bearer(token: str) -> dict[str, str]:
    return {contracts.AUTHORIZATION_HEADER: f"{contracts.BEARER_SCHEME} {token}"}


def receiver_cfg(tmp_path: Path) -> ReceiverConfig:
    return ReceiverConfig(
        secret="mlflow-secret",
        model_name="news",
        candidate_alias="candidate",
        max_skew_seconds=300,
        ledger=DeliveryLedger(tmp_path / "deliveries.sqlite"),
        dispatcher=RecordingDispatcher(),
        events_log=tmp_path / "events.jsonl",
        alert_token=TOKEN,
    )


@pytest.fixture()
def cfg(tmp_path: Path) -> ReceiverConfig:
    return receiver_cfg(tmp_path)


def test_authenticated_delivery_is_logged_with_its_runbook(cfg: ReceiverConfig) -> None:
    resp = TestClient(create_app(cfg)).post(ROUTE, json=payload(), headers=bearer(TOKEN))
    assert resp.status_code == 200, resp.text
    [record] = alerts.read(cfg.notifications, 10)
    assert record["receiver"] == contracts.RECEIVER_TICKET
    [alert] = record["alerts"]
    assert alert["alertname"] == contracts.ALERT_DRIFT
    assert alert["runbook_url"] == "runbooks/model-drift-detected.md"
    assert alert["model_version"] == "3"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        bearer("forged-token"),
        bearer(TOKEN + "x"),
        {contracts.AUTHORIZATION_HEADER: f"Basic {TOKEN}"},
        {contracts.AUTHORIZATION_HEADER: contracts.BEARER_SCHEME},
    ],
    ids=["no header", "forged", "longer", "other scheme", "no token"],
)
def test_unauthenticated_or_forged_delivery_is_refused_and_writes_nothing(
    cfg: ReceiverConfig, headers: dict[str, str]
) -> None:
    resp = TestClient(create_app(cfg)).post(ROUTE, json=payload(), headers=headers)
    assert resp.status_code == 401
    assert contracts.AUTHORIZATION_HEADER in resp.json()["error"] or "token" in resp.json()["error"]
    assert not cfg.notifications.exists()
    assert cfg.dispatcher.promotions == []  # type: ignore[attr-defined]
    [event] = [json.loads(line) for line in cfg.events_log.read_text().splitlines()]
    assert event["decision"] == "rejected" and event["status"] == 401


def test_a_receiver_without_a_token_refuses_every_delivery(cfg: ReceiverConfig) -> None:
    no_token = dataclasses.replace(cfg, alert_token="")
    resp = TestClient(create_app(no_token)).post(ROUTE, json=payload(), headers=bearer(""))
    assert resp.status_code == 500
    assert "MLP_ALERTMANAGER_TOKEN" in resp.json()["error"]
    assert not no_token.notifications.exists()


@pytest.mark.parametrize(
    ("body", "names"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (json.dumps({"receiver": "x", "status": "firing"}).encode(), "groupKey"),
        (json.dumps({**payload(), "alerts": [{"status": "firing"}]}).encode(), "labels"),
    ],
)
def test_malformed_payload_is_refused_naming_what_is_wrong(cfg: ReceiverConfig, body: bytes, names: str) -> None:
    resp = TestClient(create_app(cfg)).post(ROUTE, content=body, headers=bearer(TOKEN))
    assert resp.status_code == 400
    assert names in resp.json()["error"]
    assert not cfg.notifications.exists()


def test_the_log_keeps_every_delivery_and_skips_a_torn_last_line(cfg: ReceiverConfig) -> None:
    client = TestClient(create_app(cfg))
    client.post(ROUTE, json=payload(contracts.ALERT_DRIFT), headers=bearer(TOKEN))
    client.post(ROUTE, json=payload(contracts.ALERT_SERVER_DOWN, contracts.RECEIVER_PAGE), headers=bearer(TOKEN))
    with cfg.notifications.open("a") as fh:
        fh.write('{"receiver": "mlp-pa')  # a crash mid-write
    records = alerts.read(cfg.notifications, 10)
    assert [r["alerts"][0]["alertname"] for r in records] == [contracts.ALERT_DRIFT, contracts.ALERT_SERVER_DOWN]
    assert [r["alerts"][0]["alertname"] for r in alerts.read(cfg.notifications, 1)] == [contracts.ALERT_SERVER_DOWN]
