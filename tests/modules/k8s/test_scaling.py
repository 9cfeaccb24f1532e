from __future__ import annotations

import pytest

from core.policy import Policy, Scaling
from modules.k8s import scaling
from tests.modules.k8s.conftest import (
    IDLE_MODEL,
    IDLE_VERSION,
    MODEL,
    WEIGHTS,
    by_kind,
    catalogue_policy,
    named,
    props,
)


def _in_flight_scalers(rendered):
    return [s for s in by_kind(rendered, "ScaledObject") if s["spec"]["triggers"][0]["type"] == "prometheus"]


def test_scaled_object_per_version_on_in_flight_requests(deployments, pol):
    scalers = _in_flight_scalers(deployments)
    assert {s["spec"]["scaleTargetRef"]["name"] for s in scalers} == {f"{MODEL}-v{v}" for v in WEIGHTS}
    for s in scalers:
        version = s["spec"]["scaleTargetRef"]["name"].rsplit("-v", 1)[1]
        assert s["spec"]["minReplicaCount"] == pol.scaling.min_replicas
        assert s["spec"]["maxReplicaCount"] == pol.scaling.max_replicas
        (trigger,) = s["spec"]["triggers"]
        assert trigger["type"] == "prometheus"
        assert trigger["metadata"]["threshold"] == str(pol.scaling.target_in_flight_per_replica)
        assert trigger["metadata"]["query"] == (
            "sum(bentoml_service_request_in_progress"
            f'{{model_name="review-polarity-classifier",model_version="{version}",endpoint="/classify"}})'
        )


def test_rollout_mode_scales_the_rollout(rollout):
    (s,) = _in_flight_scalers(rollout)
    assert s["spec"]["scaleTargetRef"] == {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": MODEL}


def test_a_non_critical_model_scales_to_zero_behind_the_interceptor(scale_to_zero):
    pol = catalogue_policy().for_model(IDLE_MODEL)
    name = f"{IDLE_MODEL}-v{IDLE_VERSION}"
    deploy = named(by_kind(scale_to_zero, "Deployment"), name)
    assert "replicas" not in deploy["spec"]  # KEDA's, from zero (tests/modules/k8s/test_apply.py)
    svc = named(by_kind(scale_to_zero, "Service"), name)
    assert svc["spec"]["selector"] == deploy["spec"]["selector"]["matchLabels"]
    assert not _in_flight_scalers(scale_to_zero)  # no floor of replicas: nothing keeps it up

    route = named(by_kind(scale_to_zero, "InterceptorRoute"), IDLE_MODEL)
    assert route["apiVersion"] == "http.keda.sh/v1beta1"
    assert route["spec"]["target"] == {"service": name, "port": svc["spec"]["ports"][0]["port"]}
    assert route["spec"]["rules"] == [{"hosts": [f"{IDLE_MODEL}.models.example.com"], "paths": [{"value": "/"}]}]
    target = pol.scaling.target_in_flight_per_replica
    assert route["spec"]["scalingMetric"] == {"concurrency": {"targetValue": target}}
    assert route["spec"]["timeouts"]["readiness"] == f"{pol.scaling.cold_start_timeout_seconds}s"

    # One scaler per model, re-targeted by each release: a replaced version is never woken by the same count.
    so = named(by_kind(scale_to_zero, "ScaledObject"), IDLE_MODEL)
    assert so["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
    assert so["spec"]["minReplicaCount"] == 0
    assert so["spec"]["maxReplicaCount"] == pol.scaling.max_replicas
    assert so["spec"]["cooldownPeriod"] == pol.scaling.scale_to_zero_idle_seconds
    (trigger,) = so["spec"]["triggers"]
    assert trigger == {
        "type": "external-push",
        "metadata": {"scalerAddress": "keda-add-ons-http-external-scaler.keda:9090", "interceptorRoute": IDLE_MODEL},
    }
    # The ScaledObject comes after its InterceptorRoute: KEDA asks the scaler for a route it must already know.
    order = [m["kind"] for m in scale_to_zero["scaling"]]
    assert order.index("InterceptorRoute") < order.index("ScaledObject")


def test_a_critical_model_renders_no_scale_to_zero(deployments, rollout):
    for rendered in (deployments, rollout):
        assert not by_kind(rendered, "InterceptorRoute")
        assert all(s["spec"]["minReplicaCount"] >= 1 for s in by_kind(rendered, "ScaledObject"))


@pytest.mark.parametrize(
    ("mode", "weights"), [("rollout", {IDLE_VERSION: 100}), ("deployments", {IDLE_VERSION: 90, 6: 10})]
)
def test_a_non_critical_model_renders_one_version_in_deployments_mode_only(mode, weights):
    from modules.k8s import render_all

    with pytest.raises(ValueError, match=r"non-critical.*deployments mode with one version"):
        render_all(props(mode, model=IDLE_MODEL, weights=weights), catalogue_policy())


def test_the_add_on_namespace_is_the_one_the_add_on_stack_installs() -> None:
    import yaml

    from core.policy import REPO_ROOT

    versions = yaml.safe_load((REPO_ROOT / "infra" / "config" / "versions.yaml").read_text())
    assert versions["charts"]["keda_http_addon"]["namespace"] == scaling.KEDA_HTTP_NAMESPACE


def test_cold_start_timeout_must_outlast_the_slow_cold_start_alert(pol: Policy) -> None:
    with pytest.raises(ValueError, match="cold_start_timeout_seconds must exceed"):
        Scaling.model_validate(
            {**pol.scaling.model_dump(), "scale_from_zero_alert_seconds": 120, "cold_start_timeout_seconds": 90}
        )


def test_a_cold_request_gets_the_wait_plus_the_usual_timeout(pol: Policy) -> None:
    expected = pol.scaling.cold_start_timeout_seconds + pol.gateway.upstream_timeout_seconds
    assert scaling.cold_start_request_seconds(pol) == expected
