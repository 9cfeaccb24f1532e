"""The BentoML service options every platform model server shares (the classifier's and the generate server)."""

from __future__ import annotations

from typing import Any

from core.policy import Policy
from core.promql import duration_buckets


def service_options(name: str, workers: int, p: Policy) -> dict[str, Any]:
    """`bentoml.service(**service_options(...))`: the gateway's timeout, no access log, SLO-aligned buckets."""
    return {
        "name": name,
        "workers": workers,
        "traffic": {"timeout": p.gateway.upstream_timeout_seconds},
        "logging": {"access": {"enabled": False}},  # the gateway writes the access log; a line per request costs CPU
        # Latency buckets at the SLO thresholds, so burn-rate rules count "slower than the SLO" exactly.
        "metrics": {
            "enabled": True,
            "namespace": "bentoml_service",
            "duration": {
                "buckets": [
                    float(b) for b in duration_buckets(p.slo.latency_p95_ms / 1000, p.slo.latency_p99_ms / 1000)
                ]
            },
        },
    }
