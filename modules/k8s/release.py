"""Argo Rollouts form of a release: one Rollout per model (canary = the new version, stable = the old one), the
stable/canary Services the Gateway API plugin shifts HTTPRoute weights between, and the AnalysisTemplate whose
PromQL and thresholds are the local release executor's (`core/canary.py`).

Argo semantics used: a measurement is Successful when `successCondition` holds, Failed when `failureCondition`
holds, and Inconclusive when neither does. Every condition first requires a non-empty, finite result, so an empty
vector, NaN (0/0) or Inf is Inconclusive, never a pass. An Inconclusive run pauses the Rollout for a human.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from core.canary import argo_failure_limit, up_since
from core.policy import Policy
from core.promql import AnalysisQueries, seconds_to_promql
from modules.k8s import common as c
from modules.k8s import serving
from modules.k8s.props import ServingProps
from modules.k8s.versions import GATEWAY_API_PLUGIN, ROLLOUTS_API

CANARY_ARG = "canary-version"
STABLE_ARG = "stable-version"
CANARY = "{{args.%s}}" % CANARY_ARG  # noqa: UP031 - braces are Argo's, not Python's
STABLE = "{{args.%s}}" % STABLE_ARG  # noqa: UP031
PROMETHEUS_ADDRESS = "http://kube-prometheus-stack-prometheus.monitoring.svc:9090"


def template_name(model_name: str) -> str:
    return f"{model_name}-canary-analysis"


def stable_service_name(model_name: str) -> str:
    return f"{model_name}-stable"


def canary_service_name(model_name: str) -> str:
    return f"{model_name}-canary"


def _finite(expr: str = "result[0]") -> str:
    return f"len(result) > 0 && !isNaN({expr}) && !isInf({expr})"


@dataclass(frozen=True)
class AnalysisSpec:
    """The exact queries and thresholds the AnalysisTemplate renders: the local executor's `AnalysisQueries` with
    the Argo argument placeholders, and `policy.canary.analysis`. tests/modules/k8s/test_release.py pins them
    literally and evaluates them with promtool on fixture series."""

    window: str
    interval: str
    count: int
    failure_limit: int
    inconclusive_limit: int
    queries: dict[str, str]
    thresholds: dict[str, float]


def analysis_spec(policy: Policy, model_name: str) -> AnalysisSpec:
    a = policy.canary.analysis
    q = AnalysisQueries(model_name=model_name, window=seconds_to_promql(a.window_seconds))
    enough = f"({q.request_count(CANARY)} >= {a.min_requests})"
    per_window = max(1, math.ceil(a.window_seconds / a.interval_seconds))
    return AnalysisSpec(
        window=q.window,
        interval=f"{a.interval_seconds}s",
        count=per_window,
        failure_limit=argo_failure_limit(a),
        # Early measurements have few canary requests (inconclusive); the run needs at least one conclusive pass
        # per metric and no failure, as the local executor's window does. All-inconclusive = Inconclusive = pause.
        inconclusive_limit=per_window - 1,
        queries={
            "canary-up": up_since(q, CANARY, a.interval_seconds),
            "canary-restarts": q.restarts(CANARY, a.window_seconds),
            "canary-requests": q.request_count(CANARY),
            "canary-error-rate": q.error_rate(CANARY),
            # Latency is judged only with enough canary requests: otherwise the `and` leaves an empty vector.
            "latency-ratio": f"({q.latency_p95_seconds(CANARY)}) / ({q.latency_p95_seconds(STABLE)}) and on() {enough}",
        },
        thresholds={
            "max_latency_ratio": a.max_latency_ratio,
            "max_error_rate": a.max_error_rate,
            "min_requests": a.min_requests,
        },
    )


def _metric(
    name: str, query: str, success: str, failure: str, spec: AnalysisSpec, failure_limit: int | None = None
) -> dict[str, Any]:
    return {
        "name": name,
        "interval": spec.interval,
        "count": spec.count,
        "failureLimit": spec.failure_limit if failure_limit is None else failure_limit,
        "inconclusiveLimit": spec.inconclusive_limit,
        "successCondition": f"{_finite()} && {success}",
        "failureCondition": failure if failure == "false" else f"{_finite()} && {failure}",
        "provider": {"prometheus": {"address": PROMETHEUS_ADDRESS, "query": query}},
    }


def analysis_template(policy: Policy, model_name: str, namespace: str) -> c.Manifest:
    s = analysis_spec(policy, model_name)
    t = s.thresholds
    metrics = [
        # A dead canary fails at once, like the local executor's hard failure.
        _metric("canary-up", s.queries["canary-up"], "result[0] >= 1", "result[0] < 1", s, failure_limit=0),
        # A canary pod that crashed and was restarted by the kubelet between two scrapes: also at once.
        _metric("canary-restarts", s.queries["canary-restarts"], "result[0] == 0", "result[0] > 0", s, failure_limit=0),
        # Too few requests is Inconclusive: the failure condition can never hold.
        _metric("canary-requests", s.queries["canary-requests"], f"result[0] >= {t['min_requests']}", "false", s),
        _metric(
            "canary-error-rate",
            s.queries["canary-error-rate"],
            f"result[0] <= {t['max_error_rate']}",
            f"result[0] > {t['max_error_rate']}",
            s,
        ),
        _metric(
            "latency-ratio",
            s.queries["latency-ratio"],
            f"result[0] <= {t['max_latency_ratio']}",
            f"result[0] > {t['max_latency_ratio']}",
            s,
        ),
    ]
    meta = c.metadata(template_name(model_name), namespace, c.labels(model_name, component="release"))
    return c.manifest(
        ROLLOUTS_API,
        "AnalysisTemplate",
        meta,
        spec={"args": [{"name": CANARY_ARG}, {"name": STABLE_ARG}], "metrics": metrics},
    )


def canary_steps(policy: Policy, model_name: str, canary: int, stable: int) -> list[dict[str, Any]]:
    """setWeight w -> analysis for every step below 100, then setWeight 100."""
    args = [{"name": CANARY_ARG, "value": str(canary)}, {"name": STABLE_ARG, "value": str(stable)}]
    steps: list[dict[str, Any]] = []
    for weight in policy.canary.steps:
        steps.append({"setWeight": weight})
        if weight < 100:
            steps.append({"analysis": {"templates": [{"templateName": template_name(model_name)}], "args": args}})
    return steps


def rollout(
    props: ServingProps, policy: Policy, model_name: str, canary: int, stable: int, http_route: str
) -> c.Manifest:
    template = serving.pod_template(props, policy, model_name, canary)
    meta = c.metadata(model_name, props.namespace, c.labels(model_name, component="release"))
    return c.manifest(
        ROLLOUTS_API,
        "Rollout",
        meta,
        spec={
            # No `replicas`: the ScaledObject (scaling.rollout_scaler) owns the count. Rendered, every release's
            # server-side apply would take it back from KEDA; left out, a new Rollout starts at 1 and KEDA raises it.
            "revisionHistoryLimit": 3,
            # Not model_version: it changes with every release, and a selector is immutable.
            "selector": {"matchLabels": c.selector_labels(model_name)},
            "template": template,
            "strategy": {
                "canary": {
                    "stableService": stable_service_name(model_name),
                    "canaryService": canary_service_name(model_name),
                    "maxUnavailable": 0,
                    "maxSurge": 1,
                    "abortScaleDownDelaySeconds": policy.canary.drain_grace_seconds,
                    "trafficRouting": {
                        "plugins": {GATEWAY_API_PLUGIN: {"httpRoute": http_route, "namespace": props.namespace}}
                    },
                    "steps": canary_steps(policy, model_name, canary, stable),
                }
            },
        },
    )


def release_manifests(
    props: ServingProps, policy: Policy, model_name: str, canary: int, stable: int, http_route: str
) -> list[c.Manifest]:
    selector = c.selector_labels(model_name)
    return [
        rollout(props, policy, model_name, canary, stable, http_route),
        # Argo adds the pod-template-hash to each Service's selector while it runs the canary.
        serving.service(props, model_name, stable_service_name(model_name), selector),
        serving.service(props, model_name, canary_service_name(model_name), selector),
        serving.pod_disruption_budget(props, model_name, model_name, selector),
        analysis_template(policy, model_name, props.namespace),
    ]
