"""The check's result on the Pushgateway, grouped per (model_name, model_version) so versions do not overwrite
each other; Prometheus scrapes it with honor_labels and the `ModelDriftDetected` alert reads the share."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Gauge, delete_from_gateway, push_to_gateway

from core import promql as q
from pipelines.drift.report import DriftResult

JOB = "mlp-drift"


class PushError(RuntimeError):
    pass


def push_result(result: DriftResult, gateway_url: str, timeout: float = 10) -> None:
    """Push share (only when measured), sample count and the run time; raise PushError naming the gateway."""
    registry = CollectorRegistry()
    if result.share is not None:
        Gauge(q.DRIFT_SCORE, "Share of monitored features that drifted (last drift check)", registry=registry).set(
            result.share
        )
    Gauge(q.DRIFT_SAMPLES, "Logged inferences scored by the last drift check", registry=registry).set(result.samples)
    Gauge(q.DRIFT_LAST_RUN, "Unix time of the last completed drift check", registry=registry).set(time.time())
    grouping = {"model_name": result.model_name, "model_version": str(result.model_version)}
    try:
        # PUT replaces this group only (other versions stay). An insufficient check pushes no share, so a stale
        # share of a version that no longer gets traffic disappears instead of alerting forever.
        push_to_gateway(gateway_url, job=JOB, registry=registry, grouping_key=grouping, timeout=timeout)
    except OSError as exc:
        raise PushError(
            f"could not push the drift result to the Pushgateway at {gateway_url} ({exc}); "
            "is it running (`mlp env status`)? The report files were written anyway."
        ) from exc


def pushed(gateway_url: str, model_name: str, version: int, timeout: float = 10) -> dict[str, float]:
    """Metric name -> value of one version's group on the Pushgateway (empty when nothing was pushed)."""
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"{gateway_url}/metrics", timeout=timeout) as resp:
        text = resp.read().decode()
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.labels.get("job") == JOB
        and sample.labels.get("model_name") == model_name
        and sample.labels.get("model_version") == str(version)
    }


def forget(gateway_url: str, model_name: str, version: int, timeout: float = 10) -> None:
    """Delete one version's group (its drift alert resolves at the next scrape)."""
    grouping = {"model_name": model_name, "model_version": str(version)}
    delete_from_gateway(gateway_url, job=JOB, grouping_key=grouping, timeout=timeout)
