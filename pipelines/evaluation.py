"""One evaluation and one latency measurement, used by packaging and by the gate alike.

A version cannot pass the gate on numbers it brought along: the gate re-measures with this code.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pipelines.data import Example


class _Labelled(Protocol):
    @property
    def label(self) -> str: ...


class Classifier(Protocol):
    def predict(self, texts: list[str]) -> Sequence[_Labelled]: ...


@dataclass(frozen=True)
class EvalResult:
    n: int
    accuracy: float
    macro_f1: float
    per_class: dict[str, dict[str, float]]  # label -> precision, recall, f1, support

    def as_dict(self) -> dict[str, Any]:
        return {"n": self.n, "accuracy": self.accuracy, "macro_f1": self.macro_f1, "per_class": self.per_class}


@dataclass(frozen=True)
class LatencyResult:
    p50_ms: float
    p95_ms: float
    p99_ms: float
    mean_ms: float
    n: int
    method: str


def evaluate(classifier: Classifier, examples: list[Example], batch_size: int = 64) -> EvalResult:
    """Accuracy, macro-F1 and per-class precision/recall/F1 over `examples`."""
    predicted: list[str] = []
    for start in range(0, len(examples), batch_size):
        batch = [ex.text for ex in examples[start : start + batch_size]]
        predicted.extend(p.label for p in classifier.predict(batch))
    return score([ex.label for ex in examples], predicted)


def score(truth: list[str], predicted: list[str]) -> EvalResult:
    if len(truth) != len(predicted) or not truth:
        raise ValueError(f"cannot score {len(predicted)} predictions against {len(truth)} labels")
    per_class: dict[str, dict[str, float]] = {}
    for label in sorted(set(truth)):
        tp = sum(1 for t, p in zip(truth, predicted, strict=True) if t == label and p == label)
        n_pred = sum(1 for p in predicted if p == label)
        n_true = sum(1 for t in truth if t == label)
        precision = tp / n_pred if n_pred else 0.0
        recall = tp / n_true
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[label] = {"precision": precision, "recall": recall, "f1": f1, "support": float(n_true)}
    accuracy = sum(1 for t, p in zip(truth, predicted, strict=True) if t == p) / len(truth)
    macro_f1 = statistics.fmean(c["f1"] for c in per_class.values())
    return EvalResult(len(truth), accuracy, macro_f1, per_class)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]


def engine(classifier: Classifier) -> str:
    """The encoder's engine as a reader knows it (a runtime's `runtime` attribute; ONNX Runtime otherwise)."""
    runtime = getattr(classifier, "runtime", "onnx")
    return "ONNX Runtime" if runtime == "onnx" else str(runtime)


def measure_latency(classifier: Classifier, texts: list[str], n: int, warmup: int) -> LatencyResult:
    """Single-request latency in-process: `warmup` untimed calls, then `n` timed ones cycling over `texts`."""
    if not texts:
        raise ValueError("measure_latency needs at least one text")
    for i in range(warmup):
        classifier.predict([texts[i % len(texts)]])
    samples = []
    for i in range(n):
        start = time.perf_counter()
        classifier.predict([texts[i % len(texts)]])
        samples.append((time.perf_counter() - start) * 1000)
    return LatencyResult(
        p50_ms=percentile(samples, 50),
        p95_ms=percentile(samples, 95),
        p99_ms=percentile(samples, 99),
        mean_ms=statistics.fmean(samples),
        n=n,
        method=(
            f"single-request latency in-process (tokenize + {engine(classifier)} + head), {warmup} warm-up calls, "
            f"{n} timed calls over validation texts, nearest-rank percentiles"
        ),
    )
