"""Time, behind a small interface so the canary analysis runs on a fake clock in tests."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol


def utcnow() -> str:
    """Now, as the ISO-8601 UTC timestamp every release record and log line carries."""
    return datetime.now(UTC).isoformat(timespec="seconds")


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds))
