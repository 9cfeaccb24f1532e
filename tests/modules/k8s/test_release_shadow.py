"""The cluster's shadow phase as rendered: the public route's mirror to the canary's pods only, the Rollout's steps
(shadow window, comparison Job, quality judged in Prometheus, then each traffic step judged on latency and quality),
the comparison Job's pod, and the quality template's conditions evaluated on promtool's answers for fixture series."""

from __future__ import annotations

from typing import Any

from core import env as core_env
from core.policy import Policy
from modules.k8s import common as c
from modules.k8s import network, release, render_all
from tests.core.test_rules import run_promtool, series
from tests.modules.k8s.argo import verdict
from tests.modules.k8s.conftest import MODEL, by_kind, named, props
from tests.modules.k8s.test_release import _bound

Rendered = dict[str, list[dict[str, Any]]]


def _steps(rendered: Rendered) -> list[dict[str, Any]]:
    (ro,) = by_kind(rendered, "Rollout")
    return list(ro["spec"]["strategy"]["canary"]["steps"])


def _template(step: dict[str, Any]) -> str | None:
    return step["analysis"]["templates"][0]["templateName"] if "analysis" in step else None


def _args(step: dict[str, Any]) -> dict[str, str]:
    return {a["name"]: a["value"] for a in step["analysis"]["args"]}


def test_the_shadow_phase_comes_before_any_traffic_and_is_judged_on_its_whole_window(rollout: Rendered, pol: Policy):
    shadow = pol.canary.shadow
    assert shadow.enabled
    steps = _steps(rollout)
    first_weight = next(i for i, s in enumerate(steps) if "setWeight" in s)
    phase = steps[: first_weight - 1]  # the step before the first setWeight scales the canary for it
    # Candidate pods that take no client request, sized for the copies they answer.
    assert phase[0] == {"setCanaryScale": {"weight": shadow.share_percent}}
    assert phase[1] == {"pause": {"duration": f"{shadow.duration_seconds}s"}}
    assert [_template(s) for s in phase[2:4]] == [
        release.compare_template_name(MODEL),
        release.quality_template_name(MODEL),
    ]
    assert _args(phase[2]) == {
        "canary-version": "4",
        "stable-version": "3",
        "window-seconds": str(shadow.duration_seconds),
    }
    assert _args(phase[3]) == {"canary-version": "4", "stable-version": "3"}
    assert len(phase) == 4


def test_the_canary_is_scaled_for_its_share_and_the_copies_before_each_step(rollout: Rendered, pol: Policy):
    assert pol.canary.shadow.share_percent == 100  # every copy: the canary answers the whole load at every step
    steps = _steps(rollout)
    scales = [steps[i - 1] for i, step in enumerate(steps) if "setWeight" in step]
    assert scales == [{"setCanaryScale": {"weight": 100}}] * (len(pol.canary.steps) - 1) + [
        {"setCanaryScale": {"matchTrafficWeight": True}}
    ]
    # At a share of 50: 10% of the requests and half of the other 90% is 55% of the load.
    assert [release.canary_load_percent(50, w) for w in (0, 10, 50, 100)] == [50, 55, 75, 100]
    assert release.canary_load_percent(10, 0) == 10 and release.canary_load_percent(25, 33) == 50


def test_each_partial_traffic_step_is_judged_on_latency_then_on_the_pairs_of_its_window(rollout: Rendered, pol: Policy):
    steps = _steps(rollout)
    for i, step in enumerate(steps):
        if step.get("setWeight", 100) < 100:
            judged = [_template(s) for s in steps[i + 1 : i + 4]]
            assert judged == [
                release.template_name(MODEL),
                release.compare_template_name(MODEL),
                release.quality_template_name(MODEL),
            ]
            assert _args(steps[i + 2])["window-seconds"] == str(pol.canary.analysis.window_seconds)
    assert "setWeight" in steps[-1] and steps[-1]["setWeight"] == 100


def test_the_public_route_mirrors_to_the_canarys_pods_only(rollout: Rendered, pol: Policy):
    route = named(by_kind(rollout, "HTTPRoute"), MODEL)
    (rule,) = route["spec"]["rules"]
    mirrors = [f["requestMirror"] for f in rule["filters"] if f["type"] == "RequestMirror"]
    assert mirrors == [
        {
            "backendRef": {
                "group": "",
                "kind": "Service",
                "name": release.shadow_service_name(MODEL),
                "port": c.HTTP_PORT,
            },
            "percent": pol.canary.shadow.share_percent,
        }
    ]
    assert rule["filters"][0]["type"] == "URLRewrite"  # the copy is of the rewritten request: the server's route
    (ro,) = by_kind(rollout, "Rollout")
    canary = ro["spec"]["strategy"]["canary"]
    services = {s["metadata"]["name"]: s["spec"]["selector"] for s in by_kind(rollout, "Service")}
    shadow_selector = services[release.shadow_service_name(MODEL)]
    # Argo labels the canary's pods so while it is one, and relabels them on promotion: between releases the shadow
    # Service has no endpoints and nothing is mirrored; stable's and canary's Services never depend on the label.
    assert shadow_selector[release.ROLE_LABEL] == canary["canaryMetadata"]["labels"][release.ROLE_LABEL]
    assert canary["stableMetadata"]["labels"][release.ROLE_LABEL] != shadow_selector[release.ROLE_LABEL]
    assert all(release.ROLE_LABEL not in services[canary[k]] for k in ("stableService", "canaryService"))
    assert (
        ro["spec"]["template"]["metadata"]["labels"].items()
        >= {k: v for k, v in shadow_selector.items() if k != release.ROLE_LABEL}.items()
    )


def test_the_comparison_job_runs_as_the_drift_job_reads(rollout: Rendered, pol: Policy):
    tmpl = named(by_kind(rollout, "AnalysisTemplate"), release.compare_template_name(MODEL))
    assert [a["name"] for a in tmpl["spec"]["args"]] == ["canary-version", "stable-version", "window-seconds"]
    (metric,) = tmpl["spec"]["metrics"]
    job = metric["provider"]["job"]
    pod = job["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    assert container["command"] == list(release.COMPARE_COMMAND)
    bound = [_bound(a).replace("{{args.window-seconds}}", "600") for a in container["args"]]
    assert bound == ["--candidate", "4", "--stable", "3", "--window-seconds", "600"]
    (drift,) = [m for m in by_kind(rollout, "CronJob") if m["metadata"]["name"].endswith("-drift")]
    drift_pod = drift["spec"]["jobTemplate"]["spec"]["template"]
    (drift_container,) = drift_pod["spec"]["containers"]
    # The drift job's image, service account (its IRSA role reads the inference logs) and egress policy.
    assert container["image"] == drift_container["image"]
    assert pod["spec"]["serviceAccountName"] == drift_pod["spec"]["serviceAccountName"]
    assert pod["metadata"]["labels"].items() >= network.drift_job_pods(MODEL).items()
    env = {e["name"]: e["value"] for e in container["env"]}
    drift_env = {e["name"]: e.get("value") for e in drift_container["env"]}
    for name in (core_env.MODEL_NAME.name, core_env.INFERENCE_LOG_BUCKET.name, core_env.PUSHGATEWAY_URL.name):
        assert env[name] == drift_env[name], name
    assert job["spec"]["backoffLimit"] == 0 and metric["failureLimit"] == 0


# Measures the comparison pushed for candidate v4 against stable v3 (pipelines/shadow/export.py), one minute apart.
def _pushed(pairs: float, agreement: float, flip: float, psi: float, delta: float) -> list[dict[str, str]]:
    labels = {"model_name": MODEL, "model_version": "4", "stable_version": "3", "job": "release-quality"}
    values = {
        "mlp_shadow_pairs": pairs,
        "mlp_shadow_agreement": agreement,
        "mlp_shadow_worst_flip_rate": flip,
        "mlp_shadow_label_psi": psi,
        "mlp_shadow_mean_confidence_delta": delta,
    }
    return [series(metric, labels, f"{value:g}x30") for metric, value in values.items()]


def _verdicts(
    tmp_path: Any, pol: Policy, pushed: list[dict[str, str]], expected: dict[str, float | None]
) -> dict[str, str]:
    """promtool checks each bound query gives `expected` (None: empty); then each condition is evaluated on it."""
    tmpl = release.quality_template(pol, MODEL, "model-serving")
    metrics = {m["name"]: m for m in tmpl["spec"]["metrics"]}
    tests = [
        {
            "eval_time": "10m",
            "expr": _bound(m["provider"]["prometheus"]["query"]),
            "exp_samples": [] if expected[name] is None else [{"labels": "{}", "value": expected[name]}],
        }
        for name, m in metrics.items()
    ]
    run_promtool(tmp_path, [{"interval": "1m", "input_series": pushed, "promql_expr_test": tests}])
    return {name: verdict(m, [] if expected[name] is None else [expected[name]]) for name, m in metrics.items()}


def test_an_underconfident_candidate_fails_on_confidence_alone(tmp_path: Any, pol: Policy):
    q = pol.canary.quality
    drop = q.max_confidence_drop + 0.015
    expected = {
        "shadow-pairs": 400,
        "shadow-agreement": 0.98,
        "shadow-flip-rate": 0.03,
        "shadow-label-psi": 0.01,
        "shadow-confidence-delta": -drop,
    }
    verdicts = _verdicts(tmp_path, pol, _pushed(400, 0.98, 0.03, 0.01, -drop), expected)
    assert verdicts == {
        "shadow-pairs": "successful",
        "shadow-agreement": "successful",
        "shadow-flip-rate": "successful",
        "shadow-label-psi": "successful",
        "shadow-confidence-delta": "failed",
    }


def test_too_few_pairs_is_inconclusive_on_every_measure_however_bad(tmp_path: Any, pol: Policy):
    few = pol.canary.quality.min_pairs - 1
    expected: dict[str, float | None] = {
        "shadow-pairs": few,
        "shadow-agreement": None,
        "shadow-flip-rate": None,
        "shadow-label-psi": None,
        "shadow-confidence-delta": None,
    }
    verdicts = _verdicts(tmp_path, pol, _pushed(few, 0.2, 0.9, 3.0, -0.5), expected)
    assert set(verdicts.values()) == {"inconclusive"}, verdicts


def test_without_the_shadow_phase_nothing_of_it_is_rendered(pol: Policy):
    off = pol.model_copy(
        update={
            "canary": pol.canary.model_copy(update={"shadow": pol.canary.shadow.model_copy(update={"enabled": False})})
        }
    )
    rendered = render_all(props("rollout"), off)
    steps = _steps(rendered)
    assert "setWeight" in steps[0]
    assert {_template(s) for s in steps} - {None} == {release.template_name(MODEL)}
    assert [t["metadata"]["name"] for t in by_kind(rendered, "AnalysisTemplate")] == [release.template_name(MODEL)]
    route = named(by_kind(rendered, "HTTPRoute"), MODEL)
    assert all(f["type"] != "RequestMirror" for f in route["spec"]["rules"][0]["filters"])
    assert release.shadow_service_name(MODEL) not in {s["metadata"]["name"] for s in by_kind(rendered, "Service")}
