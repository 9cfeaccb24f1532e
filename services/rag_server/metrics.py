"""The RAG server's Prometheus metrics (names in core/promql.py): each step's time, and how questions were answered.
Created on first use, never at import (services/model_server/metrics.py says why)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from core import promql as q
from services.model_server.metrics import LABELS

STAGE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 6, 8, 10)


@dataclass(frozen=True)
class RagMetrics:
    stage: Any
    answers: Any
    loaded: Any
    started: Any  # a restart shows as a new value: the canary analysis' restart check (core/canary.py)
    log_dropped: Any


@functools.cache
def rag_metrics() -> RagMetrics:
    from prometheus_client import Counter, Gauge, Histogram

    return RagMetrics(
        stage=Histogram(
            q.RAG_STAGE_SECONDS, "Time of one step of an answer", (*LABELS, "stage"), buckets=STAGE_BUCKETS
        ),
        answers=Counter(q.RAG_ANSWERS_TOTAL.removesuffix("_total"), "Questions answered, by mode", (*LABELS, "mode")),
        loaded=Gauge(q.MODEL_LOADED, "1 once the index is loaded", LABELS, multiprocess_mode="livemax"),
        started=Gauge(
            q.MODEL_SERVER_STARTED, "Unix time this server loaded its version", LABELS, multiprocess_mode="max"
        ),
        log_dropped=Counter(
            q.INFERENCE_LOG_DROPPED.removesuffix("_total"), "Inference log records dropped", (*LABELS, "reason")
        ),
    )
