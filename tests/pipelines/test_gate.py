"""The gate's rules at and around each policy threshold (measurements given, policy applied)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from core.policy import Policy, load_policy
from pipelines.gate import judge


@dataclass
class Result:
    accuracy: float
    macro_f1: float = 0.0
    per_class: dict[str, dict[str, float]] = field(default_factory=dict)


@pytest.fixture(scope="module")
def p() -> Policy:
    return load_policy()


def _classes(**recalls: float) -> dict[str, dict[str, float]]:
    return {label: {"recall": r} for label, r in recalls.items()}


def test_first_release_needs_only_baseline_and_latency(p: Policy) -> None:
    criteria = judge(p, Result(0.9), Result(0.8), latency_p95_ms=10, champion=None)
    assert all(c.passed for c in criteria)
    assert len(criteria) == 3


def test_equal_to_baseline_is_not_above_it(p: Policy) -> None:
    criteria = judge(p, Result(0.8), Result(0.8), latency_p95_ms=10, champion=None)
    assert not criteria[0].passed


def test_latency_at_the_limit_fails(p: Policy) -> None:
    limit = p.promotion.max_p95_latency_ms
    assert not judge(p, Result(0.9), Result(0.5), limit, None)[1].passed
    assert judge(p, Result(0.9), Result(0.5), limit - 0.1, None)[1].passed


def test_overall_regression_within_tolerance_passes_beyond_fails(p: Policy) -> None:
    tol = p.promotion.regression_tolerance_overall
    champ = Result(0.95, per_class=_classes(a=0.9))
    within = judge(p, Result(0.95 - tol + 1e-9, per_class=_classes(a=0.9)), Result(0.5), 10, champ)
    beyond = judge(p, Result(0.95 - tol - 0.001, per_class=_classes(a=0.9)), Result(0.5), 10, champ)
    assert within[2].passed and not beyond[2].passed


def test_one_class_regressing_fails_even_when_the_average_holds(p: Policy) -> None:
    tol = p.promotion.regression_tolerance_per_class
    champ = Result(0.9, per_class=_classes(negative=0.9, positive=0.9))
    cand = Result(0.9, per_class=_classes(negative=0.9 - tol - 0.01, positive=0.99))
    criteria = judge(p, cand, Result(0.5), 10, champ)
    failed = [c.name for c in criteria if not c.passed]
    assert failed == ["no recall regression on class 'negative'"]


def test_a_class_missing_from_the_candidate_counts_as_zero_recall(p: Policy) -> None:
    champ = Result(0.9, per_class=_classes(positive=0.8))
    criteria = judge(p, Result(0.9, per_class={}), Result(0.5), 10, champ)
    assert not criteria[-1].passed and criteria[-1].candidate == 0.0
