"""The durable record of one release: where it stands, what it decided and why.

Written after every completed step (see `store.StateStore`), so a release whose process died resumes from the
last step it finished. Everything in it is plain JSON.
"""

from __future__ import annotations

import dataclasses
import getpass
import os
import socket
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from core.clock import utcnow


class Phase(StrEnum):
    """The last step a release has *completed* (resume starts with the step after it)."""

    PENDING = "pending"  # recorded, nothing done yet
    GATE_PASSED = "gate_passed"  # the promotion gate passed on the pulled version
    CANARY_STARTED = "canary_started"  # the candidate's server runs beside stable, no traffic yet
    SHADOWING = "shadowing"  # the gateway mirrors a share of stable's requests to it; clients get stable's answers
    SHADOW_PASSED = "shadow_passed"  # its answers to the mirrored requests agreed with stable's; mirroring stopped
    ROUTED = "routed"  # traffic split set to steps[step_index]
    ANALYSED = "analysed"  # the analysis at steps[step_index] passed
    PROMOTED = "promoted"  # 100% on the candidate
    CHAMPION_MOVED = "champion_moved"  # the champion alias points at the candidate
    ROLLING_BACK = "rolling_back"  # decided to roll back; weights go back to stable first
    # terminal
    SUCCEEDED = "succeeded"  # promoted, old stable drained and stopped
    ROLLED_BACK = "rolled_back"  # canary removed, champion unchanged
    GATE_FAILED = "gate_failed"  # nothing deployed


TERMINAL = frozenset({Phase.SUCCEEDED, Phase.ROLLED_BACK, Phase.GATE_FAILED})


class Outcome(StrEnum):
    """The `release.status` tag on the model version."""

    IN_PROGRESS = "in_progress"
    PROMOTED = "promoted"
    ROLLED_BACK = "rolled_back"
    GATE_FAILED = "gate_failed"


def who() -> str:
    """The person or service account that started a release, as `user@host`."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry in some containers
        user = os.environ.get("USER", "unknown")
    return f"{user}@{socket.gethostname()}"


@dataclass
class Trigger:
    """Who or what started the release (the log's first line)."""

    kind: str  # "manual" | "webhook" | "github"
    actor: str  # user@host, or the webhook receiver
    detail: dict[str, Any] = field(default_factory=dict)  # e.g. the webhook delivery id


@dataclass
class ReleaseState:
    release_id: str
    model_name: str
    version: int
    stable_version: int | None
    trigger: Trigger
    window_seconds: int
    interval_seconds: int
    drain_seconds: int
    steps: list[int]
    shadow_seconds: int = 0  # 0: no shadow phase before steps[0]
    shadow_share_percent: int = 0
    phase: Phase = Phase.PENDING
    step_index: int = 0
    safe_weights: dict[int, int] = field(default_factory=dict)  # the split of the last completed step
    extensions_used: int = 0
    reason: str = ""
    gate_report: str | None = None
    retrained: bool = False  # the candidate came from the drift loop's retraining (its gate says so)
    analyses: list[dict[str, Any]] = field(default_factory=list)  # one summary per analysis window
    created_at: str = field(default_factory=utcnow)
    updated_at: str = field(default_factory=utcnow)
    owner_pid: int | None = None
    log_path: str | None = None
    shadow_started_at: str | None = None  # ISO-8601 UTC: the start of the window whose answers are paired

    @classmethod
    def new(
        cls,
        model_name: str,
        version: int,
        stable_version: int | None,
        trigger: Trigger,
        *,
        window_seconds: int,
        interval_seconds: int,
        drain_seconds: int,
        steps: list[int],
        shadow_seconds: int = 0,
        shadow_share_percent: int = 0,
    ) -> ReleaseState:
        release_id = f"{datetime.now(UTC):%Y%m%dT%H%M%S}-v{version}-{uuid.uuid4().hex[:6]}"
        return cls(
            release_id=release_id,
            model_name=model_name,
            version=version,
            stable_version=stable_version,
            trigger=trigger,
            window_seconds=window_seconds,
            interval_seconds=interval_seconds,
            drain_seconds=drain_seconds,
            steps=list(steps),
            shadow_seconds=shadow_seconds,
            shadow_share_percent=shadow_share_percent,
            safe_weights={stable_version: 100} if stable_version is not None else {},
        )

    @property
    def terminal(self) -> bool:
        return self.phase in TERMINAL

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        # JSON object keys are strings: keep weights as {"3": 90} and read them back as ints.
        data["safe_weights"] = {str(k): v for k, v in self.safe_weights.items()}
        data["phase"] = self.phase.value
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ReleaseState:
        data = dict(data)
        data["trigger"] = Trigger(**data["trigger"])
        data["phase"] = Phase(data["phase"])
        data["safe_weights"] = {int(k): int(v) for k, v in data.get("safe_weights", {}).items()}
        return cls(**data)
