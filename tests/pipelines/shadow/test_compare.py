"""Paired answers of candidate and stable: pairing by request, the measures (expected values worked by hand in the
comments), and the verdicts."""

from __future__ import annotations

import pytest

from core.policy import policy
from pipelines.shadow.compare import (
    Answer,
    Comparison,
    QualityThresholds,
    QualityVerdict,
    compare,
    judge,
    paired,
    psi,
)

THRESHOLDS = QualityThresholds(
    min_pairs=100,
    min_agreement=0.95,
    max_flip_rate=0.10,
    min_pairs_per_label=30,
    max_label_psi=0.10,
    max_confidence_drop=0.05,
)


def answers(labels: list[str], confidence: float = 0.9, prefix: str = "r") -> list[Answer]:
    return [Answer(f"{prefix}{i}", 0, label, confidence) for i, label in enumerate(labels)]


def test_texts_pair_by_request_and_position_and_none_counts_twice() -> None:
    stable = [Answer("a", 0, "pos", 0.9), Answer("a", 1, "neg", 0.8), Answer("b", 0, "pos", 0.7)]
    stable.append(Answer("a", 0, "neg", 0.1))  # the same text logged again (a retry): the first answer stands
    candidate = [Answer("a", 1, "pos", 0.6), Answer("a", 0, "pos", 0.9), Answer("a", 0, "pos", 0.9)]
    candidate.append(Answer("c", 0, "pos", 0.9))  # stable never answered it: no pair
    pairs = paired(stable, candidate)
    assert [(s.request_id, s.index, s.label, c.label) for s, c in pairs] == [
        ("a", 1, "neg", "pos"),
        ("a", 0, "pos", "pos"),
    ]


def test_a_class_partly_flipped_shows_in_every_measure() -> None:
    # 50 positive and 50 negative by stable; the candidate labels 20 of the positives negative, less sure of all.
    stable = answers(["positive"] * 50 + ["negative"] * 50, confidence=0.9)
    candidate = answers(["positive"] * 30 + ["negative"] * 70, confidence=0.8)
    c = compare(paired(stable, candidate))
    assert c.pairs == 100 and c.agreement == pytest.approx(0.80)
    assert c.flip_rates == {"negative": 0.0, "positive": pytest.approx(0.40)}
    assert c.pairs_by_label == {"negative": 50, "positive": 50}
    # PSI: (0.3 - 0.5) ln(0.3/0.5) + (0.7 - 0.5) ln(0.7/0.5) = 0.10217 + 0.06729
    assert c.label_psi == pytest.approx(0.16946, abs=1e-4)
    # 2x2 table [[50, 50], [30, 70]], expected [[40, 60], [40, 60]], Yates: 9.5^2 x (2/40 + 2/60) = 7.52 -> p 0.0061
    assert c.label_shift_p_value == pytest.approx(0.0061, abs=3e-4)
    assert c.mean_confidence_delta == pytest.approx(-0.1)


def test_psi_is_zero_for_the_same_shares_and_finite_for_a_label_one_side_never_gave() -> None:
    assert psi({"a": 0.5, "b": 0.5}, {"a": 0.5, "b": 0.5}) == 0.0
    # (1e-4 - 0.5) ln(1e-4/0.5) + (1 - 0.5) ln(1/0.5) = 4.2580 + 0.3466
    assert psi({"a": 0.5, "b": 0.5}, {"a": 1.0}) == pytest.approx(4.6046, abs=1e-3)


def test_no_pairs_measures_nothing() -> None:
    c = compare([])
    assert (c.pairs, c.agreement, c.label_psi, c.mean_confidence_delta) == (0, None, None, None)
    assert judge(c, THRESHOLDS).verdict is QualityVerdict.INCONCLUSIVE


def test_a_candidate_that_differs_on_a_few_texts_either_way_passes() -> None:
    # int8 against fp32 differed on 16 of 704 held-out texts (docs/quantisation.md): here 4 of 200, 2 each way.
    stable = ["positive"] * 100 + ["negative"] * 100
    candidate = ["negative"] * 2 + ["positive"] * 98 + ["positive"] * 2 + ["negative"] * 98
    c = compare(paired(answers(stable), answers(candidate, confidence=0.88)))
    assert c.agreement == pytest.approx(0.98) and c.label_psi == pytest.approx(0.0)
    assert c.label_shift_p_value == pytest.approx(1.0)
    assert judge(c, THRESHOLDS).verdict is QualityVerdict.PASS


def test_too_few_pairs_is_inconclusive_even_when_all_agree() -> None:
    labels = ["positive"] * 50 + ["negative"] * 49
    verdict = judge(compare(paired(answers(labels), answers(labels))), THRESHOLDS)
    assert verdict.verdict is QualityVerdict.INCONCLUSIVE and "99 paired answers < min 100" in verdict.reasons[0]


def test_a_flipped_class_fails_with_its_numbers_in_the_reason() -> None:
    # 11 of 100 positives flipped among 300 texts: agreement 289/300 = 0.963 and PSI 0.006 pass, the class fails.
    stable = ["positive"] * 100 + ["negative"] * 200
    candidate = ["negative"] * 11 + ["positive"] * 89 + ["negative"] * 200
    verdict = judge(compare(paired(answers(stable), answers(candidate))), THRESHOLDS)
    assert verdict.verdict is QualityVerdict.FAIL
    assert verdict.reasons == ["0.110 of the 100 texts stable labelled 'positive' were labelled otherwise > max 0.1"]


def test_a_rare_label_is_not_judged_on_a_handful_of_texts() -> None:
    # Stable said "neutral" 5 times and the candidate disagreed on 2 (0.4): too few texts to call a class regression.
    stable = ["positive"] * 100 + ["negative"] * 95 + ["neutral"] * 5
    candidate = ["positive"] * 100 + ["negative"] * 95 + ["neutral"] * 3 + ["negative"] * 2
    c = compare(paired(answers(stable), answers(candidate)))
    assert c.flip_rates["neutral"] == pytest.approx(0.4)
    assert judge(c, THRESHOLDS).verdict is QualityVerdict.PASS


def test_a_confidence_collapse_fails_though_every_label_agrees() -> None:
    labels = ["positive"] * 100 + ["negative"] * 100
    c = compare(paired(answers(labels, confidence=0.92), answers(labels, confidence=0.61)))
    verdict = judge(c, THRESHOLDS)
    assert c.agreement == 1.0 and verdict.verdict is QualityVerdict.FAIL
    assert verdict.reasons == ["mean confidence fell by 0.310 > max 0.05 over 200 pairs"]


def test_the_policys_thresholds_let_int8_like_disagreement_pass_and_catch_a_flipped_class() -> None:
    t = QualityThresholds.from_policy(policy().canary.quality)
    # 16 of 704 texts differ either way (int8 against fp32 on the held-out split, docs/quantisation.md).
    stable = ["positive"] * 300 + ["negative"] * 404
    candidate = ["negative"] * 8 + ["positive"] * 292 + ["positive"] * 8 + ["negative"] * 396
    assert judge(compare(paired(answers(stable), answers(candidate))), t).verdict is QualityVerdict.PASS
    # A third of one class flipped: the policy rolls it back.
    flipped = ["negative"] * 100 + ["positive"] * 200 + ["negative"] * 404
    assert judge(compare(paired(answers(stable), answers(flipped))), t).verdict is QualityVerdict.FAIL


def test_a_label_distribution_shift_names_psi_and_the_tests_p_value() -> None:
    c = Comparison(500, 0.97, {}, {}, 0.25, 1e-5, 0.0)
    (reason,) = judge(c, THRESHOLDS).reasons
    assert reason == "predicted-label distribution shifted: PSI 0.250 > max 0.1 (chi-square p = 1e-05, 500 pairs)"
