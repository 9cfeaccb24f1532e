from __future__ import annotations

import math

from core.canary import measure
from core.policy import Policy, policy
from modules.k8s import release
from tests.core.test_rules import counter, run_promtool, series
from tests.modules.k8s.argo import argo_condition
from tests.modules.k8s.conftest import MODEL, by_kind, named


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
    first_weight = next(i for i, step in enumerate(steps) if "setWeight" in step)
    args = {a["name"]: a["value"] for a in steps[first_weight + 1]["analysis"]["args"]}
    assert args == {"canary-version": "4", "stable-version": "3"}
    env = {e["name"]: e.get("value") for e in ro["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["MLP_MODEL_VERSION"] == "4"


def test_rollout_uses_the_gateway_api_plugin_on_the_rendered_route(rollout):
    (ro,) = by_kind(rollout, "Rollout")
    route = named(by_kind(rollout, "HTTPRoute"), MODEL)
    canary = ro["spec"]["strategy"]["canary"]
    assert canary["trafficRouting"]["plugins"]["argoproj-labs/gatewayAPI"]["httpRoute"] == route["metadata"]["name"]
    assert canary["maxUnavailable"] == 0
    services = {s["metadata"]["name"] for s in by_kind(rollout, "Service")}
    assert {canary["stableService"], canary["canaryService"]} <= services


# ---------------------------------------------------------------- the AnalysisTemplate: reviewed PromQL, promtool


def pinned(pol: Policy) -> Policy:
    """The shipped policy with the analysis numbers the expectations below were written for (tuning policy.yaml
    must not turn these reviewed strings stale). failure_limit 2: Argo's failureLimit must be 1 (it fails *above*)."""
    a = pol.canary.analysis.model_copy(
        update={
            "window_seconds": 1800,
            "interval_seconds": 60,
            "max_latency_ratio": 1.3,
            "max_error_rate": 0.01,
            "min_requests": 30,
            "failure_limit": 2,
        }
    )
    return pol.model_copy(update={"canary": pol.canary.model_copy(update={"analysis": a})})


# Reviewed by hand for the numbers in `pinned`: 30m window, a measurement every 60s, at least 30 canary requests.
EXPECTED_QUERIES = {
    "canary-up": (
        'min_over_time((max(up{model_name="review-polarity-classifier",model_version="{{args.canary-version}}"}))'
        "[60s:])"
    ),
    "canary-restarts": (
        "sum(changes(mlp_model_server_start_time_seconds"
        '{model_name="review-polarity-classifier",model_version="{{args.canary-version}}"}[1800s])) or vector(0)'
    ),
    "canary-requests": (
        "sum(increase(bentoml_service_request_total"
        '{model_name="review-polarity-classifier",model_version="{{args.canary-version}}",endpoint="/classify"}[30m]))'
    ),
    "canary-error-rate": (
        "(sum(increase(bentoml_service_request_total"
        '{model_name="review-polarity-classifier",model_version="{{args.canary-version}}",endpoint="/classify",'
        'http_response_code=~"5.."}[30m])) or vector(0))'
        " / sum(increase(bentoml_service_request_total"
        '{model_name="review-polarity-classifier",model_version="{{args.canary-version}}",endpoint="/classify"}[30m]))'
    ),
    "latency-ratio": (
        "(histogram_quantile(0.95, sum by (le) (rate(bentoml_service_request_duration_seconds_bucket"
        '{model_name="review-polarity-classifier",model_version="{{args.canary-version}}",endpoint="/classify"}'
        "[30m]))))"
        " / (histogram_quantile(0.95, sum by (le) (rate(bentoml_service_request_duration_seconds_bucket"
        '{model_name="review-polarity-classifier",model_version="{{args.stable-version}}",endpoint="/classify"}'
        "[30m]))))"
        " and on() (sum(increase(bentoml_service_request_total"
        '{model_name="review-polarity-classifier",model_version="{{args.canary-version}}",endpoint="/classify"}[30m]))'
        " >= 30)"
    ),
}
FINITE = "len(result) > 0 && !isNaN(result[0]) && !isInf(result[0])"
# name -> (successCondition, failureCondition, failureLimit)
EXPECTED_CONDITIONS = {
    "canary-up": (f"{FINITE} && result[0] >= 1", f"{FINITE} && result[0] < 1", 0),
    "canary-restarts": (f"{FINITE} && result[0] == 0", f"{FINITE} && result[0] > 0", 0),
    "canary-requests": (f"{FINITE} && result[0] >= 30", "false", 1),
    "canary-error-rate": (f"{FINITE} && result[0] <= 0.01", f"{FINITE} && result[0] > 0.01", 1),
    "latency-ratio": (f"{FINITE} && result[0] <= 1.3", f"{FINITE} && result[0] > 1.3", 1),
}


def test_analysis_spec_is_the_reviewed_promql_and_thresholds(pol):
    spec = release.analysis_spec(pinned(pol), MODEL)
    assert spec.queries == EXPECTED_QUERIES
    assert spec.thresholds == {"max_latency_ratio": 1.3, "max_error_rate": 0.01, "min_requests": 30}
    assert (spec.window, spec.interval, spec.count, spec.failure_limit, spec.inconclusive_limit) == (
        "30m",
        "60s",
        30,  # 30m / 60s measurements
        1,
        29,  # inconclusiveLimit = count - 1: a run needs one conclusive measurement, all inconclusive pauses it
    )


def test_analysis_template_renders_the_reviewed_metrics(pol):
    tmpl = release.analysis_template(pinned(pol), MODEL, "model-serving")
    assert tmpl["spec"]["args"] == [{"name": "canary-version"}, {"name": "stable-version"}]
    metrics = {m["name"]: m for m in tmpl["spec"]["metrics"]}
    assert {n: m["provider"]["prometheus"]["query"] for n, m in metrics.items()} == EXPECTED_QUERIES
    assert {
        n: (m["successCondition"], m["failureCondition"], m["failureLimit"]) for n, m in metrics.items()
    } == EXPECTED_CONDITIONS
    for m in metrics.values():
        assert (m["interval"], m["count"], m["inconclusiveLimit"]) == ("60s", 30, 29)


def test_the_rollout_runs_the_template_it_renders_with_the_policy_thresholds(rollout, pol):
    (ro,) = by_kind(rollout, "Rollout")
    tmpl = named(by_kind(rollout, "AnalysisTemplate"), release.template_name(MODEL))
    analyses = [
        s["analysis"]
        for s in ro["spec"]["strategy"]["canary"]["steps"]
        if "analysis" in s and s["analysis"]["templates"][0]["templateName"] == tmpl["metadata"]["name"]
    ]
    assert len(analyses) == len([w for w in pol.canary.steps if w < 100])
    for analysis in analyses:
        assert analysis["templates"] == [{"templateName": tmpl["metadata"]["name"]}]
        assert [a["name"] for a in analysis["args"]] == [a["name"] for a in tmpl["spec"]["args"]]
    metrics = {m["name"]: m for m in tmpl["spec"]["metrics"]}
    a = pol.canary.analysis
    assert f"result[0] > {a.max_latency_ratio}" in metrics["latency-ratio"]["failureCondition"]
    assert f"result[0] > {a.max_error_rate}" in metrics["canary-error-rate"]["failureCondition"]
    assert f"result[0] >= {a.min_requests}" in metrics["canary-requests"]["successCondition"]
    for m in metrics.values():
        assert m["interval"] == f"{a.interval_seconds}s"
        assert "{{args.canary-version}}" in m["provider"]["prometheus"]["query"]


def _bound(query: str) -> str:
    """The query as Argo sends it for canary v4 against stable v3."""
    return query.replace("{{args.canary-version}}", "4").replace("{{args.stable-version}}", "3")


def _served(version: str, ok_per_min: float, err_per_min: float, le: str, bucket_below: str) -> list[dict[str, str]]:
    """Requests of one version: `ok_per_min` 200s and `err_per_min` 500s, every one slower than `bucket_below`
    and at most `le` seconds."""
    sel = {"model_name": MODEL, "model_version": version, "endpoint": "/classify", "job": "model-server"}
    total = ok_per_min + err_per_min
    out = [series("bentoml_service_request_total", {**sel, "http_response_code": "200"}, counter(ok_per_min))]
    if err_per_min:
        out.append(series("bentoml_service_request_total", {**sel, "http_response_code": "500"}, counter(err_per_min)))
    for bound, per_min in ((bucket_below, 0), (le, total), ("+Inf", total)):
        out.append(series("bentoml_service_request_duration_seconds_bucket", {**sel, "le": bound}, counter(per_min)))
    return out


def _alive(version: str, up: str, started: str) -> list[dict[str, str]]:
    labels = {"model_name": MODEL, "model_version": version, "job": "model-server", "instance": "10.0.0.4:3000"}
    return [series("up", labels, up), series("mlp_model_server_start_time_seconds", labels, started)]


# Series a canary analysis reads, for canary v4 against stable v3, evaluated at 40m (the 30m window is full; a
# counter of n/min increases by 30n over it). Every stable request takes (0.04, 0.05] s.
STABLE = _served("3", ok_per_min=100, err_per_min=0, le="0.05", bucket_below="0.04")
# Up all along, never restarted, 20 requests/min of which 2 are 500s, every one in (0.05, 0.1] s.
HEALTHY = [
    *_served("4", ok_per_min=18, err_per_min=2, le="0.1", bucket_below="0.05"),
    *_alive("4", up="1x60", started="1000x60"),
    *STABLE,
]
# Restarted at 35m (its start time changed), down at 40m, 0.5 requests/min (15 < 30: latency is not judged) and no
# 5xx series at all (the error rate is 0, not missing).
RESTARTED = [
    *_served("4", ok_per_min=0.5, err_per_min=0, le="0.1", bucket_below="0.05"),
    *_alive("4", up="1x35 0x25", started="1000x34 3100x26"),
    *STABLE,
]
# p95 interpolates linearly inside the one bucket that holds every request.
CANARY_P95, STABLE_P95 = 0.05 + 0.05 * 0.95, 0.04 + 0.01 * 0.95


def _at_40m(queries: dict[str, str], results: dict[str, float | None]) -> list[dict[str, object]]:
    """promtool expectations: a number, or None for an empty result (Argo: inconclusive)."""
    return [
        {
            "eval_time": "40m",
            "expr": queries[name],
            "exp_samples": [] if value is None else [{"labels": "{}", "value": value}],
        }
        for name, value in results.items()
    ]


def test_promtool_evaluates_the_rendered_queries_on_fixture_series(tmp_path, pol):
    """The rendered template's queries, bound to v4 and v3 as Argo binds them, evaluated by promtool on the fixture
    series; the expected numbers follow from the fixture by hand."""
    tmpl = release.analysis_template(pinned(pol), MODEL, "model-serving")
    queries = {m["name"]: _bound(m["provider"]["prometheus"]["query"]) for m in tmpl["spec"]["metrics"]}
    healthy = {
        "canary-up": 1,
        "canary-restarts": 0,
        "canary-requests": 600,
        "canary-error-rate": 0.1,
        "latency-ratio": CANARY_P95 / STABLE_P95,
    }
    restarted = {
        "canary-up": 0,
        "canary-restarts": 1,
        "canary-requests": 15,
        "canary-error-rate": 0,
        "latency-ratio": None,
    }
    # No canary series at all: every measurement is empty, except restarts, which is 0.
    absent = {
        "canary-up": None,
        "canary-restarts": 0,
        "canary-requests": None,
        "canary-error-rate": None,
        "latency-ratio": None,
    }
    run_promtool(
        tmp_path,
        [
            {"interval": "1m", "input_series": HEALTHY, "promql_expr_test": _at_40m(queries, healthy)},
            {"interval": "1m", "input_series": RESTARTED, "promql_expr_test": _at_40m(queries, restarted)},
            {"interval": "1m", "input_series": STABLE, "promql_expr_test": _at_40m(queries, absent)},
        ],
    )


class _Numbered:
    """A metric source that answers its i-th query with i, so each Measurement field names the query behind it."""

    def __init__(self) -> None:
        self.queries: list[str] = []

    def query(self, promql: str) -> float:
        self.queries.append(promql)
        return float(len(self.queries) - 1)


def test_the_local_executor_measures_the_same_numbers_on_the_same_series(tmp_path):
    """The cluster and the local runtime judge a canary alike: the local executor's queries (core/canary.py) over
    the same 30m window give the numbers the template's give on the same series."""
    source = _Numbered()
    m = measure(source, MODEL, canary=4, stable=3, range_seconds=1800, up_seconds=60)
    fields = [
        "canary_up_min",
        "canary_requests",
        "canary_error_rate",
        "canary_p95_seconds",
        "stable_p95_seconds",
        "stable_requests",
        "canary_restarts",
    ]
    queries = {f: source.queries[int(getattr(m, f))] for f in fields}
    healthy = {
        "canary_up_min": 1,
        "canary_requests": 600,
        "canary_error_rate": 0.1,
        "canary_p95_seconds": CANARY_P95,
        "stable_p95_seconds": STABLE_P95,
        "stable_requests": 3000,
        "canary_restarts": 0,
    }
    # The canary's p95 is still measured with 15 requests; the judgement ignores it below min_requests.
    restarted = {**healthy, "canary_up_min": 0, "canary_requests": 15, "canary_error_rate": 0, "canary_restarts": 1}
    run_promtool(
        tmp_path,
        [
            {"interval": "1m", "input_series": HEALTHY, "promql_expr_test": _at_40m(queries, healthy)},
            {"interval": "1m", "input_series": RESTARTED, "promql_expr_test": _at_40m(queries, restarted)},
        ],
    )


def test_missing_data_is_inconclusive_never_success(rollout):
    """Every success condition needs a non-empty finite result; the requests metric can never fail (too few
    requests = inconclusive). Checked for every Prometheus template: the canary analysis and the shadow quality."""
    templates = {t["metadata"]["name"]: t["spec"]["metrics"] for t in by_kind(rollout, "AnalysisTemplate")}
    metrics = [m for ms in templates.values() for m in ms if "prometheus" in m["provider"]]
    assert len(metrics) > len(release.analysis_spec(policy(), MODEL).queries)  # the quality metrics are among them
    for m in metrics:
        for missing in ([], [math.nan], [math.inf]):
            assert not argo_condition(m["successCondition"], missing), (m["name"], missing)
            assert not argo_condition(m["failureCondition"], missing), (m["name"], missing)
    canary = {m["name"]: m for m in templates[release.template_name(MODEL)]}
    assert not argo_condition(canary["canary-requests"]["failureCondition"], [0.0])
    latency = canary["latency-ratio"]
    assert argo_condition(latency["failureCondition"], [2.0]) and argo_condition(latency["successCondition"], [1.0])
