"""The generate server's Prometheus metrics (names in core/promql.py): TTFT, inter-token latency, tokens.

Created on first use, never at import, for the reason services/model_server/metrics.py gives (BentoML's
multi-process directory is set in the worker after the service module is imported).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from core import promql as q
from services.generate_server.schemas import limits
from services.model_server.metrics import LABELS

TOKENS_PER_SECOND_BUCKETS = (1, 2, 5, 10, 20, 30, 40, 60, 80, 120, 200)


@dataclass(frozen=True)
class GenerateMetrics:
    ttft: Any
    inter_token: Any
    tokens: Any
    tokens_per_second: Any
    loaded: Any
    started: Any


def slo_buckets(threshold_seconds: float) -> list[float]:
    """Buckets around an SLO threshold, the threshold itself among them (burn-rate rules count above it exactly)."""
    return sorted({round(threshold_seconds * f, 6) for f in (0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 4, 8)})


@functools.cache
def generate_metrics() -> GenerateMetrics:
    from prometheus_client import Counter, Gauge, Histogram

    g = limits()
    return GenerateMetrics(
        ttft=Histogram(
            q.GENERATE_TTFT,
            "Request start to the first generated token",
            LABELS,
            buckets=slo_buckets(g.ttft_p95_ms / 1000),
        ),
        inter_token=Histogram(
            q.GENERATE_INTER_TOKEN,
            "Time between two generated tokens",
            LABELS,
            buckets=slo_buckets(g.inter_token_p95_ms / 1000),
        ),
        tokens=Counter(q.GENERATE_TOKENS_TOTAL.removesuffix("_total"), "Tokens read and written", (*LABELS, "kind")),
        tokens_per_second=Histogram(
            q.GENERATE_TOKENS_PER_SECOND, "Decode speed of each request", LABELS, buckets=TOKENS_PER_SECOND_BUCKETS
        ),
        loaded=Gauge(q.MODEL_LOADED, "1 once the model is loaded and warmed up", LABELS, multiprocess_mode="livemax"),
        started=Gauge(
            q.MODEL_SERVER_STARTED, "Unix time this server loaded its model", LABELS, multiprocess_mode="max"
        ),
    )
