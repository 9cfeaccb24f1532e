"""The webhook receiver: HMAC and timestamp checks, replayed deliveries, dispatch modes (fake GitHub on loopback)."""

from __future__ import annotations

import json
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow.webhooks.delivery import _generate_hmac_signature
from starlette.testclient import TestClient

from pipelines.rehearsal.github_standin import GitHubStandIn
from services.webhook.actions import RetrainRequest
from services.webhook.app import ReceiverConfig, create_app
from services.webhook.deliveries import DeliveryLedger
from services.webhook.dispatch import DispatchError, GitHubDispatcher, LocalDispatcher, Promotion
from services.webhook.verify import Rejected, sign, verify

SECRET = "s3cr3t-for-tests"
MODEL = "review-polarity-classifier"


def event(alias: str = "candidate", version: str = "4", name: str = MODEL) -> str:
    return json.dumps(
        {
            "entity": "model_version_alias",
            "action": "created",
            "timestamp": "2026-11-24T10:00:00+00:00",
            "data": {"name": name, "alias": alias, "version": version},
        }
    )


def headers(body: str, secret: str = SECRET, delivery_id: str | None = None, ts: int | None = None) -> dict[str, str]:
    delivery_id = delivery_id or str(uuid.uuid4())
    stamp = str(ts if ts is not None else int(time.time()))
    return {
        "Content-Type": "application/json",
        "X-MLflow-Delivery-Id": delivery_id,
        "X-MLflow-Timestamp": stamp,
        "X-MLflow-Signature": sign(secret, delivery_id, stamp, body),
    }


def test_our_signature_is_mlflows() -> None:
    body = event()
    assert sign(SECRET, "d-1", "1700000000", body) == _generate_hmac_signature(SECRET, "d-1", "1700000000", body)


def test_verify_accepts_genuine_and_rejects_forged_stale_and_unsigned() -> None:
    body = event()
    now = time.time()
    ok = verify(headers(body), body.encode(), SECRET, now, 300)
    assert ok.delivery_id
    with pytest.raises(Rejected) as forged:
        verify(headers(body, secret="not-the-secret"), body.encode(), SECRET, now, 300)
    assert forged.value.status == 401
    tampered = headers(body)
    with pytest.raises(Rejected) as altered:
        verify(tampered, event(version="99").encode(), SECRET, now, 300)
    assert altered.value.status == 401
    with pytest.raises(Rejected) as stale:
        verify(headers(body, ts=int(now) - 301), body.encode(), SECRET, now, 300)
    assert stale.value.status == 400 and "stale" in stale.value.reason
    with pytest.raises(Rejected) as future:
        verify(headers(body, ts=int(now) + 400), body.encode(), SECRET, now, 300)
    assert future.value.status == 400
    with pytest.raises(Rejected) as unsigned:
        verify({"X-MLflow-Delivery-Id": "x", "X-MLflow-Timestamp": str(int(now))}, body.encode(), SECRET, now, 300)
    assert unsigned.value.status == 401


class RecordingDispatcher:
    def __init__(self, fail: bool = False) -> None:
        self.promotions: list[Promotion] = []
        self.retrainings: list[RetrainRequest] = []
        self.fail = fail

    def dispatch(self, promotion: Promotion) -> str:
        if self.fail:
            raise DispatchError("GitHub is down (fake)")
        self.promotions.append(promotion)
        return "recorded"

    def retrain(self, request: RetrainRequest) -> str:
        if self.fail:
            raise DispatchError("GitHub is down (fake)")
        self.retrainings.append(request)
        return "retrain recorded"


@pytest.fixture()
def receiver(tmp_path: Path) -> tuple[TestClient, RecordingDispatcher, ReceiverConfig]:
    dispatcher = RecordingDispatcher()
    cfg = ReceiverConfig(
        secret=SECRET,
        model_name=MODEL,
        candidate_alias="candidate",
        max_skew_seconds=300,
        ledger=DeliveryLedger(tmp_path / "deliveries.sqlite"),
        dispatcher=dispatcher,
        events_log=tmp_path / "events.jsonl",
    )
    return TestClient(create_app(cfg)), dispatcher, cfg


def test_genuine_delivery_starts_one_release(receiver: tuple[TestClient, RecordingDispatcher, ReceiverConfig]) -> None:
    client, dispatcher, _ = receiver
    body = event()
    resp = client.post("/mlflow", content=body, headers=headers(body))
    assert resp.status_code == 202
    assert [(p.model_name, p.version, p.alias) for p in dispatcher.promotions] == [(MODEL, 4, "candidate")]


def test_replayed_delivery_id_is_ignored(receiver: tuple[TestClient, RecordingDispatcher, ReceiverConfig]) -> None:
    client, dispatcher, cfg = receiver
    body = event()
    h = headers(body, delivery_id="replayed-1")
    assert client.post("/mlflow", content=body, headers=h).status_code == 202
    again = client.post("/mlflow", content=body, headers=h)
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    assert len(dispatcher.promotions) == 1
    # The ledger is durable: a restarted receiver still knows the id.
    assert DeliveryLedger(cfg.ledger.path).seen("replayed-1")


def test_forged_and_stale_deliveries_start_nothing(
    receiver: tuple[TestClient, RecordingDispatcher, ReceiverConfig],
) -> None:
    client, dispatcher, cfg = receiver
    body = event()
    assert client.post("/mlflow", content=body, headers=headers(body, secret="guess")).status_code == 401
    old = headers(body, ts=int(time.time()) - 3600)
    assert client.post("/mlflow", content=body, headers=old).status_code == 400
    assert client.post("/mlflow", content=body).status_code == 401
    assert dispatcher.promotions == []
    decisions = [json.loads(line)["decision"] for line in cfg.events_log.read_text().splitlines()]
    assert decisions == ["rejected", "rejected", "rejected"]
    assert SECRET not in cfg.events_log.read_text()


def test_other_aliases_and_models_are_acknowledged_and_ignored(
    receiver: tuple[TestClient, RecordingDispatcher, ReceiverConfig],
) -> None:
    client, dispatcher, _ = receiver
    for body in (event(alias="champion"), event(name="some-other-model")):
        resp = client.post("/mlflow", content=body, headers=headers(body))
        assert resp.status_code == 200 and resp.json()["status"] == "ignored"
    assert dispatcher.promotions == []


def test_failed_dispatch_answers_502_and_the_retry_is_accepted(tmp_path: Path) -> None:
    dispatcher = RecordingDispatcher(fail=True)
    cfg = ReceiverConfig(
        secret=SECRET,
        model_name=MODEL,
        candidate_alias="candidate",
        max_skew_seconds=300,
        ledger=DeliveryLedger(tmp_path / "d.sqlite"),
        dispatcher=dispatcher,
        events_log=tmp_path / "e.jsonl",
    )
    client = TestClient(create_app(cfg))
    body = event()
    h = headers(body, delivery_id="retry-1")
    assert client.post("/mlflow", content=body, headers=h).status_code == 502
    dispatcher.fail = False
    assert client.post("/mlflow", content=body, headers=h).status_code == 202  # MLflow retries with the same id
    assert len(dispatcher.promotions) == 1


# ---------------------------------------------------------------- dispatch modes


@pytest.fixture()
def fake_github() -> Iterator[GitHubStandIn]:
    with GitHubStandIn() as standin:
        yield standin


def test_github_mode_sends_repository_dispatch(fake_github: GitHubStandIn) -> None:
    dispatcher = GitHubDispatcher(fake_github.url, "acme/ml-platform", "ghs_faketoken")
    dispatcher.dispatch(Promotion(MODEL, 4, "candidate", "d-9"))
    [req] = fake_github.calls
    assert req.path == "/repos/acme/ml-platform/dispatches"
    assert req.authorization == "Bearer ghs_faketoken"
    assert req.body == {
        "event_type": "model-promoted",
        "client_payload": {"model": MODEL, "version": "4", "alias": "candidate", "delivery_id": "d-9"},
    }


def test_github_mode_reports_a_refusal(fake_github: GitHubStandIn) -> None:
    fake_github.status = 404
    with pytest.raises(DispatchError, match="404"):
        GitHubDispatcher(fake_github.url, "acme/ml-platform", "t").dispatch(Promotion(MODEL, 4, "candidate", "d"))
    with pytest.raises(DispatchError, match="owner/name"):
        GitHubDispatcher(fake_github.url, "", "t")


class _EnvDumper(LocalDispatcher):
    def command(self, p: Promotion) -> list[str]:
        return [sys.executable, "-c", "import os, json; print(json.dumps(sorted(os.environ)))"]


def test_local_mode_spawns_a_release_without_the_receivers_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLP_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("GITHUB_TOKEN", "ghs_x")
    dispatcher = _EnvDumper(tmp_path)
    dispatcher.dispatch(Promotion(MODEL, 4, "candidate", "abcdef123456"))
    log = tmp_path / "release-review-polarity-classifier-v4-abcdef12.log"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not log.read_text().strip():
        time.sleep(0.1)
    names = json.loads(log.read_text())
    assert "MLP_WEBHOOK_SECRET" not in names and "GITHUB_TOKEN" not in names
    command = LocalDispatcher(tmp_path).command(Promotion(MODEL, 4, "candidate", "abc"))
    assert command[3:9] == ["release", "start", "--model", MODEL, "--version", "4"]
    assert "webhook" in command
