"""Argo Rollouts form of a release: one Rollout per model (canary = the new version, stable = the old one), the
stable/canary Services the Gateway API plugin shifts HTTPRoute weights between, and the AnalysisTemplate whose
PromQL and thresholds are the local release executor's (`core/canary.py`).

The shadow phase (`canary.shadow`, docs/decisions/0179): the public route's weighted rule mirrors every request to
the `<model>-shadow` Service, which selects only pods Argo marks as canary (`canaryMetadata`); between releases it
has no endpoints and nothing is mirrored. The Rollout first scales the canary to the mirrored share with no client
traffic (and before each traffic step to its share plus the copies), pauses for the shadow window, then runs the
comparison Job (`<model>-shadow-compare`: both inference logs paired, the measures pushed to the Pushgateway) and
judges them in Prometheus (`<model>-shadow-quality`, `canary.quality`'s thresholds). The mirror stays on through the
traffic steps, so each step is judged on quality too: latency and errors first, then the pairs of the step's window.
Mirrored requests reach the candidate's server with Envoy's Host mark and are answered on its pinned route, which
the latency and error metrics do not select: nothing is counted twice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from core import contracts, env, images
from core.canary import argo_failure_limit, up_since
from core.policy import Policy
from core.promql import SHADOW_MEASURES, AnalysisQueries, seconds_to_promql
from modules.k8s import common as c
from modules.k8s import serving
from modules.k8s.monitoring import DRIFT_SERVICE_ACCOUNT
from modules.k8s.props import MonitoringProps, ServingProps
from modules.k8s.versions import GATEWAY_API_PLUGIN, ROLLOUTS_API

CANARY_ARG = "canary-version"
STABLE_ARG = "stable-version"
CANARY = "{{args.%s}}" % CANARY_ARG  # noqa: UP031 - braces are Argo's, not Python's
STABLE = "{{args.%s}}" % STABLE_ARG  # noqa: UP031
PROMETHEUS_ADDRESS = "http://kube-prometheus-stack-prometheus.monitoring.svc:9090"
COMPARE_COMMAND = ("python", "-m", "pipelines.shadow.job")  # in the drift-job image (infra/containers/images.py)


def template_name(model_name: str) -> str:
    return f"{model_name}-canary-analysis"


def stable_service_name(model_name: str) -> str:
    return f"{model_name}-stable"


def canary_service_name(model_name: str) -> str:
    return f"{model_name}-canary"


def shadow_service_name(model_name: str) -> str:
    return f"{model_name}-shadow"


def compare_template_name(model_name: str) -> str:
    return f"{model_name}-shadow-compare"


def quality_template_name(model_name: str) -> str:
    return f"{model_name}-shadow-quality"


# Argo Rollouts sets it on the canary's pods (`canaryMetadata`) and replaces it on promotion (`stableMetadata`).
ROLE_LABEL = "rollouts-pod-role"
WINDOW_ARG = "window-seconds"
WINDOW = "{{args.%s}}" % WINDOW_ARG  # noqa: UP031
# The comparison reads a window of two S3 logs: minutes at most (the drift job reads a day in well under one).
COMPARE_DEADLINE_SECONDS = 600


def shadows(policy: Policy, model_name: str) -> bool:
    """Whether this model's releases have a shadow phase: the policy's switch, for a model with an answer to pair."""
    return policy.canary.shadow.enabled and policy.model(model_name).task == "classify"


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
    endpoint = contracts.server_route(policy.model(model_name).task)
    q = AnalysisQueries(model_name=model_name, window=seconds_to_promql(a.window_seconds), endpoint=endpoint)
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


def _analysis(template: str, args: list[dict[str, str]]) -> dict[str, Any]:
    return {"analysis": {"templates": [{"templateName": template}], "args": args}}


def _quality_steps(model_name: str, args: list[dict[str, str]], window_seconds: int) -> list[dict[str, Any]]:
    """Measure the pairs of the last `window_seconds`, then judge them: two steps, so the Job's push is in."""
    window = [*args, {"name": WINDOW_ARG, "value": str(window_seconds)}]
    return [_analysis(compare_template_name(model_name), window), _analysis(quality_template_name(model_name), args)]


def canary_load_percent(share_percent: int, weight: int) -> int:
    """The share of all requests the canary answers at `weight` while `share_percent` of stable's are mirrored to
    it: its own and the copies. Its pods are scaled to it (`setCanaryScale`), or the copies would starve them."""
    return min(100, math.ceil(weight + share_percent * (100 - weight) / 100))


def canary_steps(policy: Policy, model_name: str, canary: int, stable: int) -> list[dict[str, Any]]:
    """[shadow phase] then setWeight w -> analysis (-> quality) for every step below 100, then setWeight 100. With
    the shadow phase the canary is scaled to the load it answers, copies included (`canary_load_percent`)."""
    args = [{"name": CANARY_ARG, "value": str(canary)}, {"name": STABLE_ARG, "value": str(stable)}]
    shadow = policy.canary.shadow
    mirrored = shadows(policy, model_name)
    steps: list[dict[str, Any]] = []
    if mirrored:
        steps += [
            # Candidate pods with no client traffic, sized for the mirrored share: they only answer copies.
            {"setCanaryScale": {"weight": canary_load_percent(shadow.share_percent, 0)}},
            {"pause": {"duration": f"{shadow.duration_seconds}s"}},
            *_quality_steps(model_name, args, shadow.duration_seconds),
        ]
    for weight in policy.canary.steps:
        if mirrored:
            load = canary_load_percent(shadow.share_percent, weight) if weight < 100 else None
            steps.append({"setCanaryScale": {"weight": load} if load is not None else {"matchTrafficWeight": True}})
        steps.append({"setWeight": weight})
        if weight < 100:
            steps.append(_analysis(template_name(model_name), args))
            if mirrored:
                steps += _quality_steps(model_name, args, policy.canary.analysis.window_seconds)
    return steps


def shadow_service(props: ServingProps, model_name: str) -> c.Manifest:
    """The mirror's target: the canary's pods only, so between releases (no canary) nothing is mirrored."""
    return serving.service(
        props, model_name, shadow_service_name(model_name), {**c.selector_labels(model_name), ROLE_LABEL: "canary"}
    )


def compare_template(props: ServingProps, mon: MonitoringProps, policy: Policy, model_name: str) -> c.Manifest:
    """A Job (Argo's job provider) that pairs the two inference logs over the window and pushes the measures: it
    succeeds once it has measured; judging is `quality_template`'s. A Job that fails (S3 or the Pushgateway
    unreachable) fails the analysis: the release rolls back rather than go on unjudged."""
    container = {
        "name": "shadow-compare",
        "image": mon.drift_image or props.sibling_image(images.DRIFT_JOB),
        "imagePullPolicy": "Always",
        "command": list(COMPARE_COMMAND),
        "args": ["--candidate", CANARY, "--stable", STABLE, "--window-seconds", WINDOW],
        "env": [
            {"name": env.MODEL_NAME.name, "value": model_name},
            {"name": env.INFERENCE_LOG_BUCKET.name, "value": props.inference_log_bucket},
            {"name": env.PUSHGATEWAY_URL.name, "value": mon.pushgateway_url},
            {"name": "HOME", "value": "/tmp"},
            {"name": "TMPDIR", "value": "/tmp"},
        ],
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}},
        "securityContext": c.container_security(),
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    # The drift job's service account and labels: the same IRSA role (read the inference logs) and NetworkPolicy
    # (S3 and the Pushgateway out, nothing in).
    labels = c.labels(model_name, component="drift")
    pod_spec = {
        "serviceAccountName": DRIFT_SERVICE_ACCOUNT,
        "automountServiceAccountToken": False,
        "restartPolicy": "Never",
        "securityContext": c.pod_security(),
        "nodeSelector": dict(serving.CPU_NODE_SELECTOR),
        "containers": [container],
        "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}}],
    }
    job = {
        "metadata": {"labels": labels},
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": COMPARE_DEADLINE_SECONDS,
            "ttlSecondsAfterFinished": 86400,
            "template": {"metadata": {"labels": labels}, "spec": pod_spec},
        },
    }
    meta = c.metadata(compare_template_name(model_name), props.namespace, c.labels(model_name, component="release"))
    return c.manifest(
        ROLLOUTS_API,
        "AnalysisTemplate",
        meta,
        spec={
            "args": [{"name": CANARY_ARG}, {"name": STABLE_ARG}, {"name": WINDOW_ARG}],
            "metrics": [{"name": "shadow-compare", "failureLimit": 0, "provider": {"job": job}}],
        },
    )


def quality_spec(policy: Policy, model_name: str) -> dict[str, tuple[str, str, str]]:
    """metric name -> (PromQL, success condition, failure condition), from `canary.quality` and the measures the
    comparison pushed for this candidate/stable pair. Too few pairs can never fail, only stay inconclusive; the
    other measures are read only `and on()` enough pairs, so with too few they are empty: inconclusive too."""
    qual = policy.canary.quality
    sel = f'{{model_name="{model_name}", model_version="{CANARY}", stable_version="{STABLE}"}}'
    # max(): one number, whatever labels the Pushgateway's scrape adds.
    pairs = f"max({SHADOW_MEASURES['pairs']}{sel})"
    enough = f"({pairs} >= {qual.min_pairs})"

    def measure(key: str) -> str:
        return f"max({SHADOW_MEASURES[key]}{sel}) and on() {enough}"

    return {
        "shadow-pairs": (pairs, f"result[0] >= {qual.min_pairs}", "false"),
        "shadow-agreement": (
            measure("agreement"),
            f"result[0] >= {qual.min_agreement}",
            f"result[0] < {qual.min_agreement}",
        ),
        "shadow-flip-rate": (
            measure("worst_flip_rate"),
            f"result[0] <= {qual.max_flip_rate}",
            f"result[0] > {qual.max_flip_rate}",
        ),
        "shadow-label-psi": (
            measure("label_psi"),
            f"result[0] <= {qual.max_label_psi}",
            f"result[0] > {qual.max_label_psi}",
        ),
        "shadow-confidence-delta": (
            measure("mean_confidence_delta"),
            f"result[0] >= -{qual.max_confidence_drop}",
            f"result[0] < -{qual.max_confidence_drop}",
        ),
    }


def quality_template(policy: Policy, model_name: str, namespace: str) -> c.Manifest:
    """Reads what the comparison pushed, a few times over a minute: the Pushgateway is scraped every 15-30 s, so the
    first reads may be empty (inconclusive); one conclusive pass per metric and no failure passes the step. A label
    with fewer than `min_pairs_per_label` pairs has no flip rate judged (the comparison leaves it out)."""
    a = policy.canary.analysis
    reads = 4
    metrics = []
    for name, (query, success, failure) in quality_spec(policy, model_name).items():
        metric: dict[str, Any] = {
            "name": name,
            "interval": f"{a.interval_seconds}s",
            "count": reads,
            "failureLimit": 0,
            "inconclusiveLimit": reads - 1,
            "successCondition": f"{_finite()} && {success}",
            "failureCondition": failure if failure == "false" else f"{_finite()} && {failure}",
            "provider": {"prometheus": {"address": PROMETHEUS_ADDRESS, "query": query}},
        }
        metrics.append(metric)
    meta = c.metadata(quality_template_name(model_name), namespace, c.labels(model_name, component="release"))
    return c.manifest(
        ROLLOUTS_API,
        "AnalysisTemplate",
        meta,
        spec={"args": [{"name": CANARY_ARG}, {"name": STABLE_ARG}], "metrics": metrics},
    )


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
                    # The shadow Service selects the canary's pods by this label; Argo swaps it on promotion.
                    "canaryMetadata": {"labels": {ROLE_LABEL: "canary"}},
                    "stableMetadata": {"labels": {ROLE_LABEL: "stable"}},
                    "trafficRouting": {
                        "plugins": {GATEWAY_API_PLUGIN: {"httpRoute": http_route, "namespace": props.namespace}}
                    },
                    "steps": canary_steps(policy, model_name, canary, stable),
                }
            },
        },
    )


def release_manifests(
    props: ServingProps,
    mon: MonitoringProps,
    policy: Policy,
    model_name: str,
    canary: int,
    stable: int,
    http_route: str,
) -> list[c.Manifest]:
    selector = c.selector_labels(model_name)
    manifests = [
        rollout(props, policy, model_name, canary, stable, http_route),
        # Argo adds the pod-template-hash to each Service's selector while it runs the canary.
        serving.service(props, model_name, stable_service_name(model_name), selector),
        serving.service(props, model_name, canary_service_name(model_name), selector),
        serving.pod_disruption_budget(props, model_name, model_name, selector),
        analysis_template(policy, model_name, props.namespace),
    ]
    if shadows(policy, model_name):
        manifests += [
            shadow_service(props, model_name),
            compare_template(props, mon, policy, model_name),
            quality_template(policy, model_name, props.namespace),
        ]
    return manifests
