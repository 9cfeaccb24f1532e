"""What a candidate answered against what stable answered, on the same requests.

Both servers write one inference-log record per text (`services/model_server/inference_log.py`): request id, the
text's position in the request, label and confidence. A mirrored request reaches both with the same request id, so
the two records of one text pair by (request id, position). From the pairs:

- agreement: the share of texts both labelled alike;
- flip rate per stable label: of the texts stable gave label c, the share the candidate labelled otherwise (a
  class-specific regression that the overall agreement dilutes);
- the shift of the predicted-label distribution: PSI between the two label shares, and the p-value of a chi-square
  test of homogeneity on the 2 x K table of label counts (the same texts, so a shift is the model's, not the traffic's);
- the mean difference of confidence (candidate - stable).

Every measure carries the number of pairs it rests on; `judge` calls too few pairs inconclusive, never a pass.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from scipy.stats import chi2_contingency

from core.policy import CanaryQuality

# A label one side never gave still gets this share in the PSI, so one missing class is a large finite value.
PSI_FLOOR = 1e-4


@dataclass(frozen=True)
class Answer:
    """One text's answer from one server, as its inference log records it."""

    request_id: str
    index: int  # the text's position in its request
    label: str
    confidence: float


@dataclass(frozen=True)
class Comparison:
    pairs: int
    agreement: float | None
    flip_rates: dict[str, float]  # stable label -> share of its texts the candidate labelled otherwise
    pairs_by_label: dict[str, int]  # stable label -> pairs the flip rate rests on
    label_psi: float | None
    label_shift_p_value: float | None
    mean_confidence_delta: float | None  # candidate - stable


def paired(stable: Iterable[Answer], candidate: Iterable[Answer]) -> list[tuple[Answer, Answer]]:
    """The texts both answered, matched by (request id, position). A key seen twice on one side (a client retry
    logged twice) keeps its first answer, so no text counts twice."""
    first: dict[tuple[str, int], Answer] = {}
    for answer in stable:
        first.setdefault((answer.request_id, answer.index), answer)
    pairs: list[tuple[Answer, Answer]] = []
    seen: set[tuple[str, int]] = set()
    for answer in candidate:
        key = (answer.request_id, answer.index)
        if key in first and key not in seen:
            seen.add(key)
            pairs.append((first[key], answer))
    return pairs


def psi(expected: dict[str, float], actual: dict[str, float]) -> float:
    """Population stability index of two distributions over the same labels (shares, each summing to 1)."""
    total = 0.0
    for label in set(expected) | set(actual):
        e, a = max(expected.get(label, 0.0), PSI_FLOOR), max(actual.get(label, 0.0), PSI_FLOOR)
        total += (a - e) * math.log(a / e)
    return total


def compare(pairs: list[tuple[Answer, Answer]]) -> Comparison:
    n = len(pairs)
    if n == 0:
        return Comparison(0, None, {}, {}, None, None, None)
    stable_counts = Counter(s.label for s, _ in pairs)
    candidate_counts = Counter(c.label for _, c in pairs)
    flips = Counter(s.label for s, c in pairs if s.label != c.label)
    labels = sorted(set(stable_counts) | set(candidate_counts))
    return Comparison(
        pairs=n,
        agreement=sum(s.label == c.label for s, c in pairs) / n,
        flip_rates={label: flips[label] / count for label, count in sorted(stable_counts.items())},
        pairs_by_label=dict(sorted(stable_counts.items())),
        label_psi=psi({k: v / n for k, v in stable_counts.items()}, {k: v / n for k, v in candidate_counts.items()}),
        label_shift_p_value=_homogeneity_p_value(stable_counts, candidate_counts, labels),
        mean_confidence_delta=sum(c.confidence - s.confidence for s, c in pairs) / n,
    )


def _homogeneity_p_value(stable: Counter[str], candidate: Counter[str], labels: list[str]) -> float:
    """Chi-square test that both label distributions are the same. One label on both sides: nothing differs."""
    if len(labels) < 2:
        return 1.0
    table = [[stable[label] for label in labels], [candidate[label] for label in labels]]
    return float(chi2_contingency(table).pvalue)


class QualityVerdict(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True)
class QualityThresholds:
    min_pairs: int
    min_agreement: float
    max_flip_rate: float
    min_pairs_per_label: int  # a label's flip rate is judged only on at least this many pairs
    max_label_psi: float
    max_confidence_drop: float

    @classmethod
    def from_policy(cls, quality: CanaryQuality) -> QualityThresholds:
        return cls(
            quality.min_pairs,
            quality.min_agreement,
            quality.max_flip_rate,
            quality.min_pairs_per_label,
            quality.max_label_psi,
            quality.max_confidence_drop,
        )


@dataclass
class QualityJudgement:
    verdict: QualityVerdict
    reasons: list[str] = field(default_factory=list)


def judge(c: Comparison, t: QualityThresholds) -> QualityJudgement:
    """Fail on any measure past its threshold, with the numbers in the reason; too few pairs is inconclusive."""
    if c.pairs < t.min_pairs or c.agreement is None:
        return QualityJudgement(
            QualityVerdict.INCONCLUSIVE, [f"{c.pairs} paired answers < min {t.min_pairs}: too few to judge quality"]
        )
    fails: list[str] = []
    if c.agreement < t.min_agreement:
        fails.append(f"agreement with stable {c.agreement:.3f} < min {t.min_agreement} over {c.pairs} pairs")
    for label, rate in c.flip_rates.items():
        if c.pairs_by_label[label] >= t.min_pairs_per_label and rate > t.max_flip_rate:
            fails.append(
                f"{rate:.3f} of the {c.pairs_by_label[label]} texts stable labelled {label!r} were labelled "
                f"otherwise > max {t.max_flip_rate}"
            )
    if c.label_psi is not None and c.label_psi > t.max_label_psi:
        fails.append(
            f"predicted-label distribution shifted: PSI {c.label_psi:.3f} > max {t.max_label_psi} "
            f"(chi-square p = {c.label_shift_p_value:.2g}, {c.pairs} pairs)"
        )
    if c.mean_confidence_delta is not None and -c.mean_confidence_delta > t.max_confidence_drop:
        fails.append(
            f"mean confidence fell by {-c.mean_confidence_delta:.3f} > max {t.max_confidence_drop} over {c.pairs} pairs"
        )
    return QualityJudgement(QualityVerdict.FAIL if fails else QualityVerdict.PASS, fails)
