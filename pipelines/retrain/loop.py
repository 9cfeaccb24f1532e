"""Follow the closed loop on the local runtime: drift alert -> delivery -> retraining -> the same gated release.

Nothing here drives the loop: Prometheus fires the alert, Alertmanager delivers it to the receiver's action route,
the receiver spawns `mlp model retrain --trigger drift --candidate`, the candidate alias makes MLflow call the
receiver again, and the receiver spawns the release. This module watches the files each of those writes (the
receiver's events log, the retraining log, the release state), prints each step as it happens, sends user-like
traffic while the canary serves (the local runtime has no users), and reports the numbers: the drift score, the
accuracy before and after on both domains, and the time from the alert to the end of the release.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from infra.local import webhook
from pipelines.release.state import Phase, ReleaseState
from pipelines.release.store import StateStore
from pipelines.release.traffic import gateway_traffic
from pipelines.release.watch import Wanted
from pipelines.release.watch import wait as follow_release
from pipelines.retrain.local import event_log

POLL_SECONDS = 2.0


class LoopError(RuntimeError):
    """A step of the loop did not happen in time or failed; the message says which and where to look."""


class LoopRefused(LoopError):
    """A breaker of the retraining refused (cooldown, per day, failed gate ...): the loop working as designed."""


@dataclass
class LoopReport:
    parent_version: int
    alert_firing_at: datetime
    drift_score: str = ""
    dispatched_at: datetime | None = None
    retraining: dict[str, Any] = field(default_factory=dict)  # the retraining log's `registered` record
    release: ReleaseState | None = None
    release_ended_at: datetime | None = None

    @property
    def version(self) -> int | None:
        return int(self.retraining["version"]) if self.retraining else None

    @property
    def promoted(self) -> bool:
        return self.release is not None and self.release.phase is Phase.SUCCEEDED

    def seconds_from_alert(self, when: datetime | None) -> float | None:
        return None if when is None else (when - self.alert_firing_at).total_seconds()

    def as_dict(self) -> dict[str, Any]:
        return {
            "parent_version": self.parent_version,
            "version": self.version,
            "drift_score": self.drift_score,
            "outcome": self.release.phase.value if self.release else None,
            "reason": self.release.reason if self.release else None,
            "accuracy": self.retraining.get("accuracy", {}),
            "seconds_from_alert": {
                "delivered_and_dispatched": self.seconds_from_alert(self.dispatched_at),
                "registered": self.seconds_from_alert(_when(self.retraining.get("at"))),
                "release_ended": self.seconds_from_alert(self.release_ended_at),
            },
        }


def _when(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue  # a line being written
    return out


def _wait_for(find: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = find()
        if found is not None:
            return found
        if time.monotonic() >= deadline:
            raise LoopError(f"no {what} within {timeout:.0f}s")
        time.sleep(POLL_SECONDS)


def receiver_decision(version: int, since: datetime) -> dict[str, Any] | None:
    """The receiver's decision on a drift alert for `version` since `since` (dispatched, paused, failed)."""
    for event in _lines(webhook.events_log()):
        if event.get("action") != "retrain" or event.get("decision") == "duplicate":
            continue
        when = _when(event.get("ts"))
        if when is None or when < since.replace(microsecond=0):
            continue
        if event.get("version") == version or version in event.get("versions", []):
            return event
    return None


def retraining_outcome(parent: int, since: datetime) -> dict[str, Any] | None:
    """The drift-triggered retraining of `parent` since `since`: its `registered` or `refused` record."""
    for event in _lines(event_log()):
        when = _when(event.get("at"))
        if event.get("trigger") != "drift" or event.get("parent_version") != parent or when is None:
            continue
        if when >= since.replace(microsecond=0) and event.get("event") in ("registered", "refused"):
            return event
    return None


def follow(
    model_name: str,
    parent: int,
    since: datetime,
    alert_firing_at: datetime,
    timeout: float,
    traffic_rps: float,
    say: Callable[[str], None] = print,
) -> LoopReport:
    """Watch the loop from a firing drift alert on `parent` (its traffic sent from `since` on) to the end of the
    retrained version's release."""
    report = LoopReport(parent, alert_firing_at)
    deadline = time.monotonic() + timeout

    def left() -> float:
        return max(1.0, deadline - time.monotonic())

    say("waiting for Alertmanager to deliver the alert to the platform's action receiver ...")
    decision = _wait_for(
        lambda: receiver_decision(parent, since),
        min(left(), 180),
        f"decision of the receiver on a drift alert for v{parent} (is the act route delivering? `mlp alerts`, "
        f"and {webhook.events_log()})",
    )
    if decision["decision"] != "dispatched":
        raise LoopError(f"the receiver did not start a retraining: {decision}")
    report.dispatched_at = _when(decision["ts"])
    say(f"  delivered and dispatched at {decision['ts']}: {decision.get('done', '')}")

    say(f"waiting for the retraining of v{parent} (breakers, embeddings, head, registration) ...")
    outcome = _wait_for(
        lambda: retraining_outcome(parent, since),
        left(),
        f"retraining of v{parent} in {event_log()} (its log: the receiver's retrain-*.log in the logs folder)",
    )
    if outcome["event"] == "refused":
        raise LoopRefused(f"retraining refused ({outcome['breaker']}): {outcome['reason']}")
    report.retraining = outcome
    report.drift_score = str(outcome.get("drift_score", ""))
    say(f"  registered v{outcome['version']} at {outcome['at']} (alias {outcome.get('alias')}); drift score "
        f"{report.drift_score}")  # fmt: skip

    registered_at = _when(outcome["at"])
    assert registered_at is not None
    state, traffic = follow_release(
        StateStore(model_name),
        Wanted(int(outcome["version"]), registered_at),
        left(),
        traffic=gateway_traffic(traffic_rps),
        say=say,
    )
    report.release = state
    report.release_ended_at = _when(state.updated_at)
    if traffic is not None:
        say(f"  traffic driven while the canary served: {json.dumps(traffic)}")
    return report


def summary_lines(report: LoopReport) -> list[str]:
    """The numbers, as a small table for people."""
    data = report.as_dict()
    lines = [
        f"drift -> retraining -> release: v{report.parent_version} -> v{report.version}, "
        f"outcome {data['outcome']} ({data['reason']})",
        f"  drift score (share of drifted features): {report.drift_score}",
        "  accuracy           before (parent)   after (retrained)",
    ]
    for split, pair in data["accuracy"].items():
        lines.append(f"  {split:<18} {pair['before']:>15.4f}   {pair['after']:>17.4f}")
    for step, seconds in data["seconds_from_alert"].items():
        shown = "-" if seconds is None else f"{seconds:.0f} s"
        lines.append(f"  {step.replace('_', ' ')} after the alert fired: {shown}")
    return lines
