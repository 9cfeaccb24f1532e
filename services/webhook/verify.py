"""Verify an MLflow registry webhook delivery: HMAC-SHA256 signature and timestamp freshness.

MLflow 3.x (mlflow/webhooks/delivery.py, Standard Webhooks conventions) signs
`f"{delivery_id}.{timestamp}.{body}"` with the webhook secret and sends
`X-MLflow-Signature: v1,<base64 digest>`, `X-MLflow-Timestamp: <unix seconds>`, `X-MLflow-Delivery-Id: <uuid>`.
A delivery is accepted only with a valid signature and a timestamp within the allowed skew; duplicate delivery
ids are the ledger's job (`deliveries.py`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass

from core import contracts, env

SIGNATURE_HEADER = contracts.MLFLOW_SIGNATURE_HEADER
TIMESTAMP_HEADER = contracts.MLFLOW_TIMESTAMP_HEADER
DELIVERY_ID_HEADER = contracts.MLFLOW_DELIVERY_ID_HEADER
SIGNATURE_VERSION = "v1"


class Rejected(Exception):
    """The delivery is not trustworthy. `status` is the HTTP answer (401 bad signature, 400 malformed/stale)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Delivery:
    delivery_id: str
    timestamp: int
    body: bytes


def sign(secret: str, delivery_id: str, timestamp: str, body: str) -> str:
    """The `X-MLflow-Signature` value MLflow computes (used by tests and by `verify`)."""
    digest = hmac.new(secret.encode(), f"{delivery_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode()}"


def _header(headers: Mapping[str, str], name: str) -> str:
    # HTTP header names are case-insensitive; starlette's Headers already are, plain dicts are not.
    for key, value in headers.items():
        if key.lower() == name.lower():
            return value
    return ""


def verify(headers: Mapping[str, str], body: bytes, secret: str, now: float, max_skew_seconds: int) -> Delivery:
    """Return the delivery if it is authentic and fresh; raise Rejected otherwise."""
    if not secret:
        raise Rejected(500, f"the receiver has no webhook secret configured ({env.WEBHOOK_SECRET.name})")
    delivery_id = _header(headers, DELIVERY_ID_HEADER).strip()
    stamp = _header(headers, TIMESTAMP_HEADER).strip()
    signatures = _header(headers, SIGNATURE_HEADER).split()
    if not delivery_id or not stamp or not signatures:
        raise Rejected(401, f"missing {SIGNATURE_HEADER}, {TIMESTAMP_HEADER} or {DELIVERY_ID_HEADER} header")
    try:
        timestamp = int(stamp)
        text = body.decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        raise Rejected(400, "timestamp is not an integer or the body is not UTF-8") from None
    # Signature first: an attacker learns nothing about our clock from a forged request.
    expected = sign(secret, delivery_id, stamp, text)
    if not any(hmac.compare_digest(expected, candidate) for candidate in signatures):
        raise Rejected(401, "signature does not match (wrong secret, or the body was altered)")
    skew = abs(now - timestamp)
    if skew > max_skew_seconds:
        raise Rejected(400, f"timestamp is {skew:.0f}s away from now (max {max_skew_seconds}s): stale or replayed")
    return Delivery(delivery_id, timestamp, body)
