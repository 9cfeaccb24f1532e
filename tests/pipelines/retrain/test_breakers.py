"""Each circuit breaker of a retraining refuses on its own condition, with a reason that says what to do."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.policy import Retraining, policy
from pipelines.retrain.breakers import Refusal, check

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
RULES = Retraining(cooldown_seconds=3600, max_per_day=3, min_labelled_examples=500, min_shifted_heldout_gain=0.02)


def decide(**overrides: object) -> Refusal | None:
    args: dict[str, object] = {"now": NOW, "retrained_at": [], "running_release": None, "labelled": 2000}
    args.update(overrides)
    return check(RULES, **args)  # type: ignore[arg-type]


def test_nothing_in_the_way_allows_it() -> None:
    assert decide() is None
    assert decide(retrained_at=[NOW - timedelta(hours=2)]) is None


def test_a_running_release_refuses_and_names_it() -> None:
    refusal = decide(running_release="v7, release abc")
    assert refusal is not None and refusal.breaker == "release_running"
    assert "v7, release abc" in refusal.reason and "mlp release status" in refusal.reason


def test_too_few_labelled_examples_refuses() -> None:
    refusal = decide(labelled=499)
    assert refusal is not None and refusal.breaker == "min_labelled_examples"
    assert "499" in refusal.reason and "500" in refusal.reason
    assert decide(labelled=500) is None


def test_cooldown_refuses_until_it_has_passed() -> None:
    refusal = decide(retrained_at=[NOW - timedelta(minutes=59)])
    assert refusal is not None and refusal.breaker == "cooldown"
    assert "retry after 2026-12-02T12:01:00+00:00" in refusal.reason
    assert decide(retrained_at=[NOW - timedelta(minutes=60)]) is None


def test_max_per_day_counts_only_the_last_24_hours() -> None:
    three = [NOW - timedelta(hours=h) for h in (2, 5, 9)]
    refusal = decide(retrained_at=three)
    assert refusal is not None and refusal.breaker == "max_per_day"
    assert "3 retrained versions" in refusal.reason
    assert decide(retrained_at=[NOW - timedelta(hours=h) for h in (2, 5, 25)]) is None


def test_a_running_release_is_checked_before_the_others() -> None:
    refusal = decide(running_release="v2", labelled=0, retrained_at=[NOW])
    assert refusal is not None and refusal.breaker == "release_running"


def test_the_policy_holds_the_breakers() -> None:
    rules = policy().retraining
    assert rules.max_per_day >= 1 and rules.min_labelled_examples >= 1


def test_the_policy_refuses_a_zero_daily_limit() -> None:
    with pytest.raises(ValueError, match="max_per_day"):
        Retraining(cooldown_seconds=0, max_per_day=0, min_labelled_examples=1)


def test_an_unreviewed_failed_gate_refuses_and_points_to_its_runbook() -> None:
    refusal = decide(failed_gate="v9: promotion gate failed: shifted-domain held-out accuracy gain")
    assert refusal is not None and refusal.breaker == "failed_gate"
    assert "v9" in refusal.reason and "retrained-candidate-failed-gate.md" in refusal.reason
