"""The circuit breakers of a retraining, from the policy's `retraining` section: pure decisions, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from core.policy import Retraining


@dataclass(frozen=True)
class Refusal:
    breaker: str  # release_running | failed_gate | min_labelled_examples | cooldown | max_per_day
    reason: str  # says what was found and what to do next


class RetrainRefused(RuntimeError):
    """A breaker refused the retraining; `refusal` says which and why."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(f"retraining refused ({refusal.breaker}): {refusal.reason}")
        self.refusal = refusal


def check(
    rules: Retraining,
    *,
    now: datetime,
    retrained_at: list[datetime],
    running_release: str | None,
    labelled: int,
    failed_gate: str | None = None,
) -> Refusal | None:
    """The first breaker that refuses, or None. `retrained_at`: when earlier retrained versions were registered;
    `running_release`: a description of the release that runs now, if one does; `labelled`: shifted-domain
    training examples available; `failed_gate`: the last retrained version, if it failed the gate and nobody has
    reviewed it yet (only a drift-triggered retraining passes it on; a person's manual one does not)."""
    if running_release is not None:
        # A new version now would race the release for the candidate alias and judge against a moving champion.
        return Refusal(
            "release_running",
            f"a release of the model is running ({running_release}); wait for it to finish (`mlp release status`) "
            "and retrain after it",
        )
    if failed_gate is not None:
        # The same data would make the same head: retrying automatically only repeats the failure.
        return Refusal(
            "failed_gate",
            f"the last retrained version ({failed_gate}) failed the promotion gate and has not been reviewed; "
            "drift does not retry it. Follow runbooks/retrained-candidate-failed-gate.md",
        )
    if labelled < rules.min_labelled_examples:
        return Refusal(
            "min_labelled_examples",
            f"{labelled} labelled shifted-domain training examples, the policy asks for at least "
            f"{rules.min_labelled_examples}; label more before retraining",
        )
    recent = sorted(t for t in retrained_at if t <= now)
    if recent and now - recent[-1] < timedelta(seconds=rules.cooldown_seconds):
        wait = timedelta(seconds=rules.cooldown_seconds) - (now - recent[-1])
        return Refusal(
            "cooldown",
            f"the last retrained version was registered at {recent[-1].isoformat()}, within the "
            f"{rules.cooldown_seconds}s cooldown; retry after {(now + wait).isoformat(timespec='seconds')}",
        )
    today = [t for t in recent if now - t < timedelta(days=1)]
    if len(today) >= rules.max_per_day:
        return Refusal(
            "max_per_day",
            f"{len(today)} retrained versions in the last 24 hours, the policy allows {rules.max_per_day}; "
            "find out why retraining keeps being asked for (runbooks/retraining-refused.md) instead of retrying",
        )
    return None
