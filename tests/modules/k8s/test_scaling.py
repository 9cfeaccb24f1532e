from __future__ import annotations

import pytest

from core.policy import Policy, Scaling
from modules.k8s import scaling
from tests.modules.k8s.conftest import MODEL, WEIGHTS, by_kind, named

ENDPOINT = "batch-classifier"


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


def test_non_critical_endpoints_scale_to_zero(deployments, pol):
    assert pol.scaling.non_critical_endpoints == [ENDPOINT]
    name = f"{MODEL}-{ENDPOINT}"
    deploy = named(by_kind(deployments, "Deployment"), name)
    assert "replicas" not in deploy["spec"]  # KEDA's, from zero (tests/modules/k8s/test_apply.py)
    svc = named(by_kind(deployments, "Service"), name)
    assert svc["spec"]["selector"] == deploy["spec"]["selector"]["matchLabels"]

    route = named(by_kind(deployments, "InterceptorRoute"), name)
    assert route["apiVersion"] == "http.keda.sh/v1beta1"
    assert route["spec"]["target"] == {"service": name, "port": svc["spec"]["ports"][0]["port"]}
    assert route["spec"]["rules"] == [{"hosts": [f"{ENDPOINT}.models.example.com"], "paths": [{"value": "/"}]}]
    target = pol.scaling.target_in_flight_per_replica
    assert route["spec"]["scalingMetric"] == {"concurrency": {"targetValue": target}}
    assert route["spec"]["timeouts"]["readiness"] == f"{pol.scaling.cold_start_timeout_seconds}s"

    so = named(by_kind(deployments, "ScaledObject"), name)
    assert so["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
    assert so["spec"]["minReplicaCount"] == 0
    assert so["spec"]["maxReplicaCount"] == pol.scaling.max_replicas
    assert so["spec"]["cooldownPeriod"] == pol.scaling.scale_to_zero_idle_seconds
    (trigger,) = so["spec"]["triggers"]
    assert trigger == {
        "type": "external-push",
        "metadata": {"scalerAddress": "keda-add-ons-http-external-scaler.keda:9090", "interceptorRoute": name},
    }
    # The ScaledObject comes after its InterceptorRoute: KEDA asks the scaler for a route it must already know.
    order = [(m["kind"], m["metadata"]["name"]) for m in deployments["scaling"]]
    assert order.index(("InterceptorRoute", name)) < order.index(("ScaledObject", name))


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
