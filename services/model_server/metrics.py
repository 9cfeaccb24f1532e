"""The model server's own Prometheus metrics (names in core/promql.py), beside BentoML's built-ins.

Created on first use, never at import: BentoML sets PROMETHEUS_MULTIPROC_DIR in each worker after the service
module is imported, and prometheus_client picks its (multi-process) value store when it is first imported.
Every series carries `model_name` and `model_version` (the file_sd target labels carry the same values).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from core import promql as q

BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)
CONFIDENCE_BUCKETS = (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 0.99, 1.0)
LABELS = ("model_name", "model_version")


@dataclass(frozen=True)
class ModelMetrics:
    inferences: Any
    errors: Any
    batch_size: Any
    confidence: Any
    log_dropped: Any
    loaded: Any
    started: Any
    inference_batch: Any


@functools.cache
def model_metrics() -> ModelMetrics:
    from prometheus_client import Counter, Gauge, Histogram

    return ModelMetrics(
        inferences=Counter(q.INFERENCES_TOTAL.removesuffix("_total"), "Texts classified", LABELS),
        errors=Counter(
            q.MODEL_ERRORS_TOTAL.removesuffix("_total"),
            "Failed /classify requests by error class (invalid_input, too_large, overloaded, inference_failed...)",
            (*LABELS, "error_class"),
        ),
        batch_size=Histogram(q.REQUEST_BATCH_SIZE, "Texts per /classify request", LABELS, buckets=BATCH_BUCKETS),
        confidence=Histogram(
            q.PREDICTION_CONFIDENCE, "Probability of the predicted label", LABELS, buckets=CONFIDENCE_BUCKETS
        ),
        log_dropped=Counter(
            q.INFERENCE_LOG_DROPPED.removesuffix("_total"),
            "Inference-log records dropped (queue full or store failing); requests were not affected",
            (*LABELS, "reason"),
        ),
        # One worker process each: in multi-process mode the max over live workers is the honest value.
        loaded=Gauge(q.MODEL_LOADED, "1 once the model is loaded and warmed up", LABELS, multiprocess_mode="livemax"),
        # "max", not "livemax": the newest start wins even while a dead worker's file lingers.
        started=Gauge(
            q.MODEL_SERVER_STARTED, "Unix time this server loaded its model", LABELS, multiprocess_mode="max"
        ),
        inference_batch=Histogram(
            q.INFERENCE_BATCH_SIZE, "Texts per model call after adaptive batching", LABELS, buckets=BATCH_BUCKETS
        ),
    )


def error_class(status: int) -> str | None:
    """The `error_class` label of an HTTP status answered by /classify (None: not an error)."""
    if status < 400:
        return None
    return {
        400: "invalid_input",
        413: "too_large",
        415: "invalid_input",
        422: "invalid_input",
        429: "overloaded",
        503: "overloaded",
        504: "timeout",
    }.get(status, "client_error" if status < 500 else "inference_failed")
