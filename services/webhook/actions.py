"""What the platform does with the alerts Alertmanager delivers to its action receiver (`contracts.RECEIVER_ACT`).

`ModelDriftDetected`, firing, on the platform's model: retrain the version that drifted (`Dispatcher.retrain`).
Notifications from the people's receivers (page, ticket) are logged and never act, so an alert routed elsewhere
starts nothing. Each alert acts once: Alertmanager repeats a notification while the alert fires and retries one
that failed, so the action is keyed in the delivery ledger by the alert's fingerprint and start time. Whether the
retraining then runs is its breakers' decision (cooldown, per day, release running, failed gate:
pipelines/retrain/breakers.py), not the receiver's.

An operator can pause the actions (`mlp alerts actions pause --reason ...`): a file in the receiver's state folder,
read on every delivery, so no restart is needed. Paused, notifications are still logged; nothing starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core import contracts
from services.webhook.alerts import Notification

FIRING = "firing"
PAUSE_FILE = "actions-paused"  # in the receiver's state folder; holds who paused and why


def paused(state_dir: Path) -> str | None:
    """Why the actions are paused, or None when they run."""
    path = state_dir / PAUSE_FILE
    try:
        return path.read_text().strip() or "paused (no reason given)"
    except FileNotFoundError:
        return None


def pause(state_dir: Path, reason: str) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / PAUSE_FILE).write_text(reason + "\n")


def resume(state_dir: Path) -> None:
    (state_dir / PAUSE_FILE).unlink(missing_ok=True)


@dataclass(frozen=True)
class RetrainRequest:
    model_name: str
    version: int  # the version that drifted: the retraining's parent
    fingerprint: str  # Alertmanager's fingerprint of the alert (its label set)
    drift_score: str  # the alert's value, as Prometheus rendered it
    alert_started_at: str

    @property
    def key(self) -> str:
        """The ledger key: one retraining per alert, however often it is delivered."""
        return f"alert:{self.fingerprint}:{self.alert_started_at}"


def retrain_requests(notification: Notification, model_name: str) -> list[RetrainRequest]:
    """The retrainings a notification asks for (none unless the action receiver delivered a firing drift alert)."""
    if notification.receiver != contracts.RECEIVER_ACT:
        return []
    out = []
    for alert in notification.alerts:
        if alert.get("alertname") != contracts.ALERT_DRIFT or alert.get("status") != FIRING:
            continue
        if alert.get("model_name") != model_name:
            continue
        try:
            version = int(alert.get("model_version", ""))
        except ValueError:
            continue  # a drift alert without a version names nothing to retrain
        out.append(
            RetrainRequest(
                model_name=model_name,
                version=version,
                fingerprint=str(alert.get("fingerprint", "")),
                drift_score=str(alert.get(contracts.DRIFT_SCORE_ANNOTATION, "")),
                alert_started_at=str(alert.get("starts_at", "")),
            )
        )
    return out
