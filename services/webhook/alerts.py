"""Alertmanager's webhook deliveries: who may send them, and the notification log they are written to.

Alertmanager presents `Authorization: Bearer <token>` (its receiver's `http_config.authorization`, the token read
from a file). A delivery without it, or with another token, is refused before its body is read. An accepted one is
appended to the notification log, one JSON line per delivery, flushed to disk before the answer, so an on-call
engineer (`mlp alerts`) sees every notification that was sent even if the receiver restarts right after.
"""

from __future__ import annotations

import hmac
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core import contracts, env
from services.webhook.verify import Rejected

NOTIFICATION_LOG = "notifications.jsonl"  # in the receiver's state folder
# The annotation and label keys a notification keeps for the reader (the rest of the payload is Alertmanager's).
KEPT_LABELS = ("alertname", "severity", "model_name", "model_version", "instance")
KEPT_ANNOTATIONS = ("summary", "runbook_url", contracts.DRIFT_SCORE_ANNOTATION)


def authenticate(headers: Mapping[str, str], token: str) -> None:
    """Raise Rejected unless the request carries `Authorization: Bearer <token>`."""
    if not token:
        raise Rejected(500, f"the receiver has no Alertmanager token configured ({env.ALERTMANAGER_TOKEN.name})")
    value = headers.get(contracts.AUTHORIZATION_HEADER, "")
    scheme, _, presented = value.partition(" ")
    if scheme != contracts.BEARER_SCHEME or not presented:
        raise Rejected(401, f"missing `{contracts.AUTHORIZATION_HEADER}: {contracts.BEARER_SCHEME} <token>` header")
    if not hmac.compare_digest(presented.strip().encode(), token.encode()):
        raise Rejected(401, "bearer token does not match (wrong or rotated token)")


@dataclass(frozen=True)
class Notification:
    receiver: str
    status: str
    group_key: str
    alerts: list[dict[str, Any]]

    def record(self) -> dict[str, Any]:
        return {"receiver": self.receiver, "status": self.status, "group_key": self.group_key, "alerts": self.alerts}


def parse(body: bytes) -> Notification:
    """Alertmanager's webhook payload (version 4); raise Rejected(400) naming what is wrong."""
    try:
        payload = json.loads(body)
    except ValueError:
        raise Rejected(400, "body is not JSON: expected Alertmanager's webhook payload") from None
    if not isinstance(payload, dict):
        raise Rejected(400, "body is not a JSON object: expected Alertmanager's webhook payload")
    missing = [k for k in ("receiver", "status", "groupKey", "alerts") if k not in payload]
    if missing or not isinstance(payload["alerts"], list):
        raise Rejected(400, f"not an Alertmanager webhook payload: missing or malformed {missing or ['alerts']}")
    alerts = []
    for alert in payload["alerts"]:
        if not isinstance(alert, dict) or not isinstance(alert.get("labels"), dict):
            raise Rejected(400, "an alert in `alerts` has no `labels` object")
        labels, notes = alert["labels"], alert.get("annotations") or {}
        alerts.append(
            {
                "status": alert.get("status", ""),
                "fingerprint": alert.get("fingerprint", ""),
                "starts_at": alert.get("startsAt", ""),
                "ends_at": alert.get("endsAt", ""),
                **{k: labels[k] for k in KEPT_LABELS if k in labels},
                **{k: notes[k] for k in KEPT_ANNOTATIONS if k in notes},
            }
        )
    return Notification(str(payload["receiver"]), str(payload["status"]), str(payload["groupKey"]), alerts)


def append(log: Path, record: dict[str, Any]) -> None:
    """Append one JSON line and fsync it: the answer to Alertmanager means the notification is on disk."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as fh:
        fh.write(json.dumps(record, sort_keys=True) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def read(log: Path, limit: int) -> list[dict[str, Any]]:
    """The last `limit` notifications, oldest first (a line torn by a crash mid-write is skipped)."""
    if not log.exists():
        return []
    out = []
    for line in log.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out[-limit:]
