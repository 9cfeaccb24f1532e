from __future__ import annotations

import math

from core.canary import argo_failure_limit, up_since
from core.promql import AnalysisQueries, seconds_to_promql
from modules.k8s import release
from tests.k8s.conftest import MODEL, by_kind, named


def test_rollout_steps_follow_policy(rollout, pol):
    (ro,) = by_kind(rollout, "Rollout")
    steps = ro["spec"]["strategy"]["canary"]["steps"]
    weights = [s["setWeight"] for s in steps if "setWeight" in s]
    assert weights == pol.canary.steps
    # An analysis follows every partial weight, none follows 100.
    for i, step in enumerate(steps):
        if step.get("setWeight", 100) < 100:
            assert "analysis" in steps[i + 1]
    assert "analysis" not in steps[-1]
    args = {a["name"]: a["value"] for a in steps[1]["analysis"]["args"]}
    assert args == {"canary-version": "4", "stable-version": "3"}
    env = {e["name"]: e["value"] for e in ro["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["MLP_MODEL_VERSION"] == "4"


def test_rollout_uses_the_gateway_api_plugin_on_the_rendered_route(rollout):
    (ro,) = by_kind(rollout, "Rollout")
    route = named(by_kind(rollout, "HTTPRoute"), MODEL)
    canary = ro["spec"]["strategy"]["canary"]
    assert canary["trafficRouting"]["plugins"]["argoproj-labs/gatewayAPI"]["httpRoute"] == route["metadata"]["name"]
    assert canary["maxUnavailable"] == 0
    services = {s["metadata"]["name"] for s in by_kind(rollout, "Service")}
    assert {canary["stableService"], canary["canaryService"]} <= services


def test_analysis_queries_are_the_local_executors(pol):
    """The template's PromQL is AnalysisQueries(...) with Argo's argument placeholders, as the local executor
    (core/canary.py) builds it with real versions."""
    a = pol.canary.analysis
    spec = release.analysis_spec(pol, MODEL)
    q = AnalysisQueries(model_name=MODEL, window=seconds_to_promql(a.window_seconds))
    canary, stable = "{{args.canary-version}}", "{{args.stable-version}}"
    assert spec.queries["canary-requests"] == q.request_count(canary)
    assert spec.queries["canary-error-rate"] == q.error_rate(canary)
    assert spec.queries["canary-up"] == up_since(q, canary, a.interval_seconds)
    assert spec.queries["canary-restarts"] == q.restarts(canary, a.window_seconds)
    assert spec.queries["latency-ratio"].startswith(
        f"({q.latency_p95_seconds(canary)}) / ({q.latency_p95_seconds(stable)})"
    )
    assert spec.queries["latency-ratio"].endswith(f"({q.request_count(canary)} >= {a.min_requests})")
    assert spec.thresholds == {
        "max_latency_ratio": a.max_latency_ratio,
        "max_error_rate": a.max_error_rate,
        "min_requests": a.min_requests,
    }
    assert spec.count == math.ceil(a.window_seconds / a.interval_seconds)
    assert spec.failure_limit == argo_failure_limit(a)


def test_rendered_template_uses_the_spec(rollout, pol):
    (tmpl,) = by_kind(rollout, "AnalysisTemplate")
    spec = release.analysis_spec(pol, MODEL)
    metrics = {m["name"]: m for m in tmpl["spec"]["metrics"]}
    assert {n: m["provider"]["prometheus"]["query"] for n, m in metrics.items()} == spec.queries
    a = pol.canary.analysis
    assert f"result[0] > {a.max_latency_ratio}" in metrics["latency-ratio"]["failureCondition"]
    assert f"result[0] > {a.max_error_rate}" in metrics["canary-error-rate"]["failureCondition"]
    assert f"result[0] >= {a.min_requests}" in metrics["canary-requests"]["successCondition"]
    for m in metrics.values():
        assert m["interval"] == f"{a.interval_seconds}s"
        assert m["count"] == spec.count


def test_missing_data_is_inconclusive_never_success(rollout):
    """Every success condition needs a non-empty finite result; the requests metric can never fail (too few
    requests = inconclusive). Checked by evaluating the conditions the way Argo's expr does, for the cases."""
    (tmpl,) = by_kind(rollout, "AnalysisTemplate")

    def evaluate(cond: str, result: list[float]) -> bool:
        expr = (
            cond.replace("&&", " and ")
            .replace("||", " or ")
            .replace("!isNaN", " not isNaN")
            .replace("!isInf", " not isInf")
        )
        env = {"result": result, "len": len, "isNaN": math.isnan, "isInf": math.isinf, "false": False, "true": True}
        return bool(eval(expr, {"__builtins__": {}}, env))

    for m in tmpl["spec"]["metrics"]:
        for missing in ([], [math.nan], [math.inf]):
            assert not evaluate(m["successCondition"], missing), (m["name"], missing)
            assert not evaluate(m["failureCondition"], missing), (m["name"], missing)
    requests = next(m for m in tmpl["spec"]["metrics"] if m["name"] == "canary-requests")
    assert not evaluate(requests["failureCondition"], [0.0])
    latency = next(m for m in tmpl["spec"]["metrics"] if m["name"] == "latency-ratio")
    assert evaluate(latency["failureCondition"], [2.0]) and evaluate(latency["successCondition"], [1.0])
