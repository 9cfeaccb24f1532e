"""The drift alert acts: the action receiver's firing `ModelDriftDetected` starts one retraining of the drifted
version, however often Alertmanager delivers it; anything else, or anything unauthenticated, starts nothing."""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from core import contracts
from services.webhook import actions
from services.webhook.alerts import parse
from services.webhook.app import ReceiverConfig, create_app
from services.webhook.dispatch import RETRAIN_EVENT_TYPE, GitHubDispatcher, LocalDispatcher
from tests.services.webhook.test_alerts import TOKEN, bearer, payload, receiver_cfg
from tests.services.webhook.test_receiver import RecordingDispatcher, fake_github  # noqa: F401 (fixture)

ROUTE = contracts.ALERTMANAGER_ROUTE


def drift_delivery(receiver: str = contracts.RECEIVER_ACT, status: str = "firing", model: str = "news") -> Any:
    body = copy.deepcopy(payload(contracts.ALERT_DRIFT, receiver))
    [alert] = body["alerts"]
    alert["status"] = body["status"] = status
    alert["labels"]["model_name"] = model
    alert["annotations"][contracts.DRIFT_SCORE_ANNOTATION] = "0.8333"
    return body


def make_cfg(tmp_path: Path, fail: bool = False) -> ReceiverConfig:
    return dataclasses.replace(receiver_cfg(tmp_path), dispatcher=RecordingDispatcher(fail=fail))


def retrainings(cfg: ReceiverConfig) -> list[actions.RetrainRequest]:
    assert isinstance(cfg.dispatcher, RecordingDispatcher)
    return cfg.dispatcher.retrainings


def test_a_firing_drift_alert_from_the_action_receiver_starts_one_retraining(tmp_path: Path) -> None:
    cfg = make_cfg(tmp_path)
    client = TestClient(create_app(cfg))
    resp = client.post(ROUTE, json=drift_delivery(), headers=bearer(TOKEN))
    assert resp.status_code == 202, resp.text
    [request] = retrainings(cfg)
    assert (request.model_name, request.version, request.fingerprint) == ("news", 3, "abc123")
    assert request.drift_score == "0.8333" and request.alert_started_at == "2026-12-02T15:00:00Z"
    # Alertmanager repeats the notification while the alert fires: the same alert starts nothing more.
    again = client.post(ROUTE, json=drift_delivery(), headers=bearer(TOKEN))
    assert again.status_code == 200 and len(retrainings(cfg)) == 1
    decisions = [json.loads(line)["decision"] for line in cfg.events_log.read_text().splitlines()]
    assert decisions.count("dispatched") == 1 and "duplicate" in decisions
    # The same alert firing again later (a new start time) is a new alert.
    later = drift_delivery()
    later["alerts"][0]["startsAt"] = "2026-12-03T15:00:00Z"
    assert client.post(ROUTE, json=later, headers=bearer(TOKEN)).status_code == 202
    assert len(retrainings(cfg)) == 2


@pytest.mark.parametrize(
    "body",
    [
        drift_delivery(receiver=contracts.RECEIVER_TICKET),  # the people's copy of the same alert
        drift_delivery(status="resolved"),
        drift_delivery(model="another-model"),
        payload(contracts.ALERT_SERVER_DOWN, contracts.RECEIVER_ACT),
    ],
    ids=["ticket receiver", "resolved", "other model", "other alert"],
)
def test_what_is_not_a_firing_drift_alert_on_the_action_receiver_is_only_logged(tmp_path: Path, body: Any) -> None:
    cfg = make_cfg(tmp_path)
    resp = TestClient(create_app(cfg)).post(ROUTE, json=body, headers=bearer(TOKEN))
    assert resp.status_code == 200 and resp.json()["status"] == "logged"
    assert retrainings(cfg) == []
    assert cfg.notifications.exists()


@pytest.mark.parametrize("headers", [{}, bearer("forged-token")], ids=["unauthenticated", "forged"])
def test_an_unauthenticated_or_forged_drift_alert_starts_nothing(tmp_path: Path, headers: dict[str, str]) -> None:
    cfg = make_cfg(tmp_path)
    resp = TestClient(create_app(cfg)).post(ROUTE, json=drift_delivery(), headers=headers)
    assert resp.status_code == 401
    assert retrainings(cfg) == [] and not cfg.notifications.exists()


def test_a_failed_dispatch_answers_502_and_alertmanagers_retry_acts(tmp_path: Path) -> None:
    failing = make_cfg(tmp_path, fail=True)
    resp = TestClient(create_app(failing)).post(ROUTE, json=drift_delivery(), headers=bearer(TOKEN))
    assert resp.status_code == 502 and "retraining" in resp.json()["error"]
    working = make_cfg(tmp_path)  # same ledger: the failed claim was released
    assert TestClient(create_app(working)).post(ROUTE, json=drift_delivery(), headers=bearer(TOKEN)).status_code == 202
    assert len(retrainings(working)) == 1


def test_a_drift_alert_without_a_version_names_nothing_to_retrain() -> None:
    body = drift_delivery()
    del body["alerts"][0]["labels"]["model_version"]
    assert actions.retrain_requests(parse(json.dumps(body).encode()), "news") == []


def test_local_mode_retrains_the_drifted_version_as_a_candidate(tmp_path: Path) -> None:
    request = actions.RetrainRequest("news", 3, "abc123", "0.8333", "2026-12-02T15:00:00Z")
    command = LocalDispatcher(tmp_path).retrain_command(request)
    assert command[3:9] == ["model", "retrain", "--from", "3", "--trigger", "drift"]
    assert command[command.index("--alert-fingerprint") + 1] == "abc123"
    assert command[command.index("--drift-score") + 1] == "0.8333"
    assert "--candidate" in command


def test_github_mode_sends_the_drift_event(fake_github: Any) -> None:  # noqa: F811 (fixture)
    dispatcher = GitHubDispatcher(fake_github.url, "acme/ml-platform", "ghs_faketoken")
    dispatcher.retrain(actions.RetrainRequest("news", 3, "abc123", "0.8333", "2026-12-02T15:00:00Z"))
    [req] = fake_github.calls
    assert req.body == {
        "event_type": RETRAIN_EVENT_TYPE,
        "client_payload": {"model": "news", "version": "3", "alert_fingerprint": "abc123", "drift_score": "0.8333"},
    }
