"""Following the loop reads the right records: the receiver's decision for the drifted version since the traffic
started (not an older alert's, not a repeat), and the drift-triggered retraining of that parent."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipelines.retrain import loop

SINCE = datetime(2026, 12, 2, 20, 8, 0, 500_000, tzinfo=UTC)


def write(path: Path, records: list[dict[str, object]]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + '{"torn": ')


@pytest.fixture()
def logs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    events, retraining = tmp_path / "events.jsonl", tmp_path / "retraining.jsonl"
    monkeypatch.setattr(loop.webhook, "events_log", lambda: events)
    monkeypatch.setattr(loop, "event_log", lambda: retraining)
    return events, retraining


def test_the_receivers_decision_is_this_versions_since_the_traffic(logs: tuple[Path, Path]) -> None:
    events, _ = logs
    write(
        events,
        [
            {"ts": "2026-12-02T19:00:00Z", "decision": "dispatched", "action": "retrain", "version": 2},  # older
            {"ts": "2026-12-02T20:08:10Z", "decision": "dispatched", "action": "retrain", "version": 7},  # other
            {"ts": "2026-12-02T20:08:20Z", "decision": "accepted", "version": 2},  # a promotion, not an action
            {"ts": "2026-12-02T20:08:24Z", "decision": "dispatched", "action": "retrain", "version": 2, "done": "x"},
            {"ts": "2026-12-02T20:09:24Z", "decision": "duplicate", "action": "retrain", "version": 2},
        ],
    )
    found = loop.receiver_decision(2, SINCE)
    assert found is not None and found["ts"] == "2026-12-02T20:08:24Z" and found["done"] == "x"
    assert loop.receiver_decision(3, SINCE) is None


def test_a_paused_receiver_is_found_too(logs: tuple[Path, Path]) -> None:
    events, _ = logs
    write(events, [{"ts": "2026-12-02T20:08:24Z", "decision": "paused", "action": "retrain", "versions": [2]}])
    found = loop.receiver_decision(2, SINCE)
    assert found is not None and found["decision"] == "paused"


def test_the_retraining_is_the_drift_triggered_one_of_this_parent(logs: tuple[Path, Path]) -> None:
    _, retraining = logs
    write(
        retraining,
        [
            {"at": "2026-12-02T20:08:30+00:00", "event": "registered", "trigger": "manual", "parent_version": 2},
            {"at": "2026-12-02T19:08:30+00:00", "event": "refused", "trigger": "drift", "parent_version": 2},
            {"at": "2026-12-02T20:09:05+00:00", "event": "registered", "trigger": "drift", "parent_version": 2,
             "version": 5, "accuracy": {"validation": {"before": 0.76, "after": 0.75}}},
        ],
    )  # fmt: skip
    found = loop.retraining_outcome(2, SINCE)
    assert found is not None and found["version"] == 5
    assert loop.retraining_outcome(9, SINCE) is None


def test_the_summary_shows_the_numbers() -> None:
    report = loop.LoopReport(
        parent_version=2,
        alert_firing_at=datetime(2026, 12, 2, 20, 8, 15, tzinfo=UTC),
        drift_score="0.909",
        dispatched_at=datetime(2026, 12, 2, 20, 8, 24, tzinfo=UTC),
        retraining={"version": 5, "at": "2026-12-02T20:09:05+00:00",
                    "accuracy": {"shifted_heldout": {"before": 0.7443, "after": 0.8151}}},
    )  # fmt: skip
    data = report.as_dict()
    assert data["seconds_from_alert"] == {"delivered_and_dispatched": 9.0, "registered": 50.0, "release_ended": None}
    assert not report.promoted and report.version == 5
    text = "\n".join(loop.summary_lines(report))
    assert (
        "0.909" in text and "0.7443" in text and "0.8151" in text and "registered after the alert fired: 50 s" in text
    )
