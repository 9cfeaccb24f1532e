"""The BentoML service options every platform model server shares (the classifier's and the generate server)."""

from __future__ import annotations

from typing import Any

from core import env
from core.policy import Policy, policy
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


def served_model_name(task: str) -> str:
    """The catalogue model a single-version server answers for: MLP_MODEL_NAME, else the catalogue's first model of
    its task."""
    name = env.MODEL_NAME.get()
    if name:
        return name
    of_task = [m.name for m in policy().models if m.task == task]
    if not of_task:
        raise ValueError(f"set {env.MODEL_NAME.name}: the catalogue (policy.yaml models) has no {task} model")
    return of_task[0]
