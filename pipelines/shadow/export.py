"""The paired comparison's measures as people read them and as Prometheus stores them.

The local release executor and the cluster's comparison job (`pipelines/shadow/job.py`) push the same gauges
(`core.promql.SHADOW_MEASURES`, labels model_name, model_version = the candidate, stable_version) to the Pushgateway;
the cluster's AnalysisTemplate judges them there with `canary.quality`'s thresholds (modules/k8s/release.py).
"""

from __future__ import annotations

from typing import Any

from pipelines.shadow.compare import Comparison

PUSH_JOB = "release-quality"  # the Pushgateway job both writers use: the candidate's group is replaced, not added to


def worst_judged_flip_rate(c: Comparison, min_pairs_per_label: int) -> float | None:
    """The highest flip rate among the labels `judge` judges (at least `min_pairs_per_label` pairs); None if none."""
    rates = [rate for label, rate in c.flip_rates.items() if c.pairs_by_label[label] >= min_pairs_per_label]
    return max(rates, default=None)


def quality_numbers(c: Comparison, min_pairs_per_label: int) -> dict[str, Any]:
    """The measures as logged, tagged, printed and pushed (rounded: they are read by people)."""

    def r(x: float | None) -> float | None:
        return None if x is None else round(x, 4)

    return {
        "pairs": c.pairs,
        "agreement": r(c.agreement),
        "worst_flip_rate": r(worst_judged_flip_rate(c, min_pairs_per_label)),
        "label_psi": r(c.label_psi),
        "label_shift_p_value": None if c.label_shift_p_value is None else float(f"{c.label_shift_p_value:.3g}"),
        "mean_confidence_delta": r(c.mean_confidence_delta),
    }


def push_quality(url: str, model_name: str, version: int, stable: int, measures: dict[str, Any], failed: bool) -> None:
    """One group per candidate version: `mlp_release_quality_failed` and every measure that has a value."""
    from prometheus_client import CollectorRegistry, Gauge, push_to_gateway

    from core.promql import RELEASE_QUALITY_FAILED, SHADOW_MEASURES

    labels = {"model_name": model_name, "model_version": str(version), "stable_version": str(stable)}
    reg = CollectorRegistry()
    doc = "1 when the candidate's answers diverged from stable's on the same requests (canary.quality)"
    Gauge(RELEASE_QUALITY_FAILED, doc, list(labels), registry=reg).labels(**labels).set(1 if failed else 0)
    for key, metric in SHADOW_MEASURES.items():
        value = measures.get(key)
        if value is not None:
            gauge = Gauge(metric, f"Shadow comparison: {key.replace('_', ' ')}", list(labels), registry=reg)
            gauge.labels(**labels).set(value)
    grouping = {"model_name": model_name, "model_version": str(version)}
    push_to_gateway(url, job=PUSH_JOB, registry=reg, grouping_key=grouping, timeout=10)


def forget_quality(url: str, model_name: str, version: int) -> None:
    """Delete one candidate's group (its CanaryQualityDiverged alert resolves at the next scrape)."""
    from prometheus_client import delete_from_gateway

    grouping = {"model_name": model_name, "model_version": str(version)}
    delete_from_gateway(url, job=PUSH_JOB, grouping_key=grouping, timeout=10)
