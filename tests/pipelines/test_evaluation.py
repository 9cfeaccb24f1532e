"""The evaluation the packaging step and the gate share: metrics are right on hand-checked cases."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from pipelines.baseline import MajorityClass, TfidfLogReg, train_baseline
from pipelines.data import Example, load_split
from pipelines.evaluation import evaluate, measure_latency, percentile, score


def test_score_matches_hand_computed_metrics() -> None:
    truth = ["positive", "positive", "negative", "negative"]
    predicted = ["positive", "negative", "negative", "negative"]
    result = score(truth, predicted)
    assert result.accuracy == pytest.approx(0.75)
    assert result.per_class["positive"]["recall"] == pytest.approx(0.5)
    assert result.per_class["positive"]["precision"] == pytest.approx(1.0)
    assert result.per_class["negative"]["precision"] == pytest.approx(2 / 3)
    f1_pos, f1_neg = 2 * 0.5 / 1.5, 2 * (2 / 3) / (5 / 3)
    assert result.macro_f1 == pytest.approx((f1_pos + f1_neg) / 2)


def test_score_refuses_mismatched_lengths() -> None:
    with pytest.raises(ValueError, match="cannot score"):
        score(["positive"], [])


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 95) == 95.0
    assert percentile([3.0], 99) == 3.0


@dataclass(frozen=True)
class _Label:
    label: str


class _Echo:
    """Predicts 'positive' for texts with 'good': a classifier whose accuracy is known in advance."""

    def __init__(self) -> None:
        self.calls = 0

    def predict(self, texts: list[str]) -> list[_Label]:
        self.calls += 1
        return [_Label("positive" if "good" in t else "negative") for t in texts]


def test_evaluate_batches_and_scores() -> None:
    examples = [Example("good", "positive"), Example("bad", "negative"), Example("good?", "negative")] * 30
    classifier = _Echo()
    result = evaluate(classifier, examples, batch_size=16)
    assert result.accuracy == pytest.approx(2 / 3)
    assert classifier.calls == 6


def test_measure_latency_counts_only_timed_calls() -> None:
    classifier = _Echo()
    latency = measure_latency(classifier, ["good"], n=40, warmup=5)
    assert classifier.calls == 45 and latency.n == 40
    assert 0 < latency.p50_ms <= latency.p95_ms <= latency.p99_ms


def test_tfidf_baseline_beats_majority_class_on_validation() -> None:
    train, validation = load_split("train"), load_split("validation")
    tfidf = evaluate(train_baseline("tfidf_logreg", train), validation)
    majority = evaluate(train_baseline("majority_class", train), validation)
    assert isinstance(train_baseline("majority_class", train), MajorityClass)
    assert tfidf.accuracy > majority.accuracy + 0.05
    assert isinstance(train_baseline("tfidf_logreg", train[:50]), TfidfLogReg)


def test_unknown_baseline_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown baseline"):
        train_baseline("bert", [])


class _OnLlama(_Echo):
    runtime = "llama.cpp"


def test_the_latency_method_names_the_engine_that_ran() -> None:
    assert "(tokenize + ONNX Runtime + head)" in measure_latency(_Echo(), ["good"], n=3, warmup=1).method
    assert "(tokenize + llama.cpp + head)" in measure_latency(_OnLlama(), ["good"], n=3, warmup=1).method
