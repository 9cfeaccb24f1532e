from __future__ import annotations

from pipelines import promql
from tests.k8s.conftest import MODEL, WEIGHTS, by_kind


def test_scaled_object_per_version_on_in_flight_requests(deployments, pol):
    scalers = by_kind(deployments, "ScaledObject")
    assert {s["spec"]["scaleTargetRef"]["name"] for s in scalers} == {f"{MODEL}-v{v}" for v in WEIGHTS}
    for s in scalers:
        version = s["spec"]["scaleTargetRef"]["name"].rsplit("-v", 1)[1]
        assert s["spec"]["minReplicaCount"] == pol.scaling.min_replicas
        assert s["spec"]["maxReplicaCount"] == pol.scaling.max_replicas
        (trigger,) = s["spec"]["triggers"]
        assert trigger["type"] == "prometheus"
        assert trigger["metadata"]["threshold"] == str(pol.scaling.target_in_flight_per_replica)
        assert trigger["metadata"]["query"] == f"sum({promql.REQUEST_IN_PROGRESS}{promql.selector(MODEL, version)})"


def test_rollout_mode_scales_the_rollout(rollout):
    (s,) = by_kind(rollout, "ScaledObject")
    assert s["spec"]["scaleTargetRef"] == {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": MODEL}


def test_non_critical_endpoints_scale_to_zero(deployments, pol):
    objs = by_kind(deployments, "HTTPScaledObject")
    assert len(objs) == len(pol.scaling.non_critical_endpoints)
    for obj in objs:
        assert obj["spec"]["replicas"]["min"] == 0
        assert obj["spec"]["scaledownPeriod"] == pol.scaling.scale_to_zero_idle_seconds
        target = obj["spec"]["scaleTargetRef"]
        (deploy,) = [d for d in by_kind(deployments, "Deployment") if d["metadata"]["name"] == target["name"]]
        assert deploy["spec"]["replicas"] == 0
        services = {s["metadata"]["name"]: s for s in by_kind(deployments, "Service")}
        assert services[target["service"]]["spec"]["selector"] == deploy["spec"]["selector"]["matchLabels"]
