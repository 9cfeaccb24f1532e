"""The serving namespace's NetworkPolicies, asked as "may this pod reach that one": default deny both ways, the
model servers reachable only from this Gateway's proxies, the KEDA interceptor's pods and Prometheus, on their port.

The peers' labels below are written as the charts and controllers set them (Envoy Gateway's infra labels, the
keda-add-ons-http and keda charts' templates, the Prometheus operator), not read from the code under test.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.modules.k8s.conftest import by_kind
from tests.modules.k8s.netpol_eval import Outside, Pod, allowed, isolated

NS = "model-serving"
ENVOY = Pod(
    "envoy-gateway-system",
    {
        "app.kubernetes.io/name": "envoy",
        "app.kubernetes.io/component": "proxy",
        "app.kubernetes.io/managed-by": "envoy-gateway",
        "gateway.envoyproxy.io/owning-gateway-name": "mlp-gateway",
        "gateway.envoyproxy.io/owning-gateway-namespace": NS,
    },
)
OTHER_GATEWAY = Pod(
    "envoy-gateway-system",
    {
        **ENVOY.labels,
        "gateway.envoyproxy.io/owning-gateway-name": "someone-elses",
        "gateway.envoyproxy.io/owning-gateway-namespace": "team-x",
    },
)
INTERCEPTOR = Pod(
    "keda",
    {
        "app.kubernetes.io/component": "interceptor",
        "app.kubernetes.io/name": "http-add-on",
        "app.kubernetes.io/instance": "keda-http-addon",
        "app.kubernetes.io/part-of": "keda-add-ons-http",
    },
)
KEDA_OPERATOR = Pod(
    "keda",
    {"app": "keda-operator", "app.kubernetes.io/name": "keda-operator", "app.kubernetes.io/instance": "keda"},
)
KEDA_METRICS = Pod("keda", {"app": "keda-operator-metrics-apiserver", "app.kubernetes.io/instance": "keda"})
PROMETHEUS = Pod(
    "monitoring", {"app.kubernetes.io/name": "prometheus", "prometheus": "kube-prometheus-stack-prometheus"}
)
GRAFANA = Pod("monitoring", {"app.kubernetes.io/name": "grafana"})
PUSHGATEWAY = Pod(
    "monitoring",
    {"app.kubernetes.io/name": "prometheus-pushgateway", "app.kubernetes.io/instance": "prometheus-pushgateway"},
)
MLFLOW = Pod("mlflow", {"app.kubernetes.io/name": "mlflow", "app.kubernetes.io/instance": "mlflow"})
COREDNS = Pod("kube-system", {"k8s-app": "kube-dns", "eks.amazonaws.com/component": "coredns"})
S3 = Outside("52.216.8.1")
IMDS = Outside("169.254.169.254")


def _pod(workload: dict[str, Any]) -> Pod:
    spec = workload["spec"]
    template = spec["jobTemplate"]["spec"]["template"] if workload["kind"] == "CronJob" else spec["template"]
    return Pod(workload["metadata"]["namespace"], template["metadata"]["labels"])


def _pods(rendered: dict[str, list[dict[str, Any]]]) -> list[Pod]:
    """The model-server pods of a render (a critical model's release, or a non-critical model's version)."""
    pods = [_pod(w) for w in by_kind(rendered, "Deployment") + by_kind(rendered, "Rollout")]
    assert pods
    return pods


@pytest.fixture(params=["deployments", "rollout"])
def rendered(request: pytest.FixtureRequest) -> dict[str, list[dict[str, Any]]]:
    return request.getfixturevalue(request.param)


@pytest.fixture(params=["deployments", "rollout", "scale_to_zero"])
def any_model(request: pytest.FixtureRequest) -> dict[str, list[dict[str, Any]]]:
    """A critical model in both modes, and a non-critical one."""
    return request.getfixturevalue(request.param)


def policies(rendered: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return by_kind(rendered, "NetworkPolicy")


def test_every_pod_of_the_namespace_is_isolated_both_ways_by_a_default_deny(rendered):
    nps = policies(rendered)
    deny = [p for p in nps if p["spec"]["podSelector"] == {}]
    assert any(
        set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"}
        and not p["spec"].get("ingress")
        and not p["spec"].get("egress")
        for p in deny
    )
    stranger = Pod(NS, {"app": "anything-someone-runs-here"})
    assert isolated(nps, stranger, "Ingress") and isolated(nps, stranger, "Egress")
    assert not allowed(nps, stranger, MLFLOW, 5000)
    assert not allowed(nps, stranger, S3, 443)
    assert not allowed(nps, ENVOY, stranger, 3000)


def test_model_servers_admit_the_gateway_and_prometheus_on_their_port_only(rendered):
    nps = policies(rendered)
    for model in _pods(rendered):
        for caller in (ENVOY, PROMETHEUS):
            assert allowed(nps, caller, model, 3000), caller
            assert not allowed(nps, caller, model, 8080), caller
        # The interceptor routes by Host without the API key: it must not reach the release's pods directly.
        # Same namespaces, other pods: the KEDA operator and metrics server, another Gateway's proxies, Grafana.
        for stranger in (INTERCEPTOR, KEDA_OPERATOR, KEDA_METRICS, OTHER_GATEWAY, GRAFANA, MLFLOW, Pod(NS, {"a": "x"})):
            assert not allowed(nps, stranger, model, 3000), stranger


def test_scale_to_zero_pods_admit_the_interceptor_pods_not_the_keda_namespace(scale_to_zero):
    nps = policies(scale_to_zero)
    for pod in _pods(scale_to_zero):
        assert allowed(nps, INTERCEPTOR, pod, 3000) and allowed(nps, PROMETHEUS, pod, 3000)
        assert not allowed(nps, INTERCEPTOR, pod, 9090)
        for stranger in (KEDA_OPERATOR, KEDA_METRICS, ENVOY, GRAFANA):
            assert not allowed(nps, stranger, pod, 3000), stranger


def test_no_peer_of_the_model_servers_is_a_whole_namespace(any_model):
    """Selecting `keda` by namespace alone would admit its operator and metrics server too (issue 11)."""
    for p in policies(any_model):
        for rule in p["spec"].get("ingress", []) + p["spec"].get("egress", []):
            for peer in rule.get("from", rule.get("to", [])):
                if "namespaceSelector" in peer:
                    assert peer.get("podSelector", {}).get("matchLabels"), (p["metadata"]["name"], peer)


def test_model_servers_reach_dns_mlflow_and_https_and_nothing_else(any_model):
    nps = policies(any_model)
    for model in _pods(any_model):
        assert allowed(nps, model, COREDNS, 53, "UDP") and allowed(nps, model, COREDNS, 53, "TCP")
        assert allowed(nps, model, MLFLOW, 5000)
        assert allowed(nps, model, S3, 443)
        assert not allowed(nps, model, MLFLOW, 5432)
        assert not allowed(nps, model, IMDS, 80)  # no node credentials: IRSA only
        assert not allowed(nps, model, PUSHGATEWAY, 9091)
        assert not allowed(nps, model, Pod("kube-system", {"app": "x"}), 53, "UDP")
        assert not allowed(nps, model, model, 3000)  # no lateral moves between model servers


def test_drift_job_pushes_to_the_pushgateway_and_receives_nothing(rendered):
    nps = policies(rendered)
    (cron,) = by_kind(rendered, "CronJob")
    drift = _pod(cron)
    assert allowed(nps, drift, PUSHGATEWAY, 9091)
    assert allowed(nps, drift, MLFLOW, 5000) and allowed(nps, drift, S3, 443)
    assert not allowed(nps, drift, PROMETHEUS, 9090)
    for caller in (ENVOY, INTERCEPTOR, PROMETHEUS):
        assert not allowed(nps, caller, drift, 3000)
