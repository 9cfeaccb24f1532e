"""The add-on namespaces the platform owns: Pod Security labels (with a reason below `restricted`), default deny
both ways, and the allows the add-ons need, asked as "may this pod reach that one" of the rendered objects."""

from __future__ import annotations

import pytest

from infra.config import load_versions
from modules.k8s import platform
from modules.k8s.validate import validate_manifest
from tests.modules.k8s.netpol_eval import Outside, Pod, allowed, isolated
from tests.modules.k8s.test_network import ENVOY, INTERCEPTOR, KEDA_OPERATOR, MLFLOW, PROMETHEUS

VPC = "10.10.0.0/16"
OWNED = platform.owned_namespaces(
    vpc_cidr=VPC, serving_namespace="model-serving", gateway_name="mlp-gateway", listener_ports=[80], model_port=3000
)
MANIFESTS = [m for ns in OWNED for m in platform.namespace_manifests(ns)]
POLICIES = [m for m in MANIFESTS if m["kind"] == "NetworkPolicy"]
COREDNS = Pod("kube-system", {"k8s-app": "kube-dns"})
CONTROL_PLANE = Outside("10.10.3.17")  # an EKS control-plane ENI in a private subnet
INTERNET = Outside("198.51.100.7")
ENDPOINT_POD = Pod(
    "model-serving", {"app.kubernetes.io/part-of": "ml-platform", "app.kubernetes.io/component": "batch"}
)
MODEL_POD = Pod(
    "model-serving", {"app.kubernetes.io/part-of": "ml-platform", "app.kubernetes.io/component": "model-server"}
)


def test_every_namespace_a_chart_installs_into_is_owned_except_kube_system():
    chart_namespaces = {c.namespace for c in load_versions().charts.values()} - {"kube-system"}
    assert {ns.name for ns in OWNED} == chart_namespaces


@pytest.mark.parametrize("ns", OWNED, ids=lambda n: n.name)
def test_each_owned_namespace_has_pod_security_labels_and_a_reason_below_restricted(ns):
    (namespace,) = [m for m in MANIFESTS if m["kind"] == "Namespace" and m["metadata"]["name"] == ns.name]
    labels = namespace["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] in {"restricted", "baseline", "privileged"}
    assert labels["pod-security.kubernetes.io/audit"] == labels["pod-security.kubernetes.io/warn"] == "restricted"
    if labels["pod-security.kubernetes.io/enforce"] != "restricted":
        assert len(namespace["metadata"]["annotations"]["mlp.io/pod-security-reason"]) > 60


def test_only_the_host_level_add_ons_are_privileged():
    privileged = {ns.name for ns in OWNED if ns.pod_security == "privileged"}
    assert privileged == {"gpu-operator", "monitoring"}


@pytest.mark.parametrize("ns", OWNED, ids=lambda n: n.name)
def test_each_owned_namespace_denies_both_ways_by_default(ns):
    stranger = Pod(ns.name, {"app": "something-new"})
    assert isolated(POLICIES, stranger, "Ingress") and isolated(POLICIES, stranger, "Egress")
    assert allowed(POLICIES, stranger, COREDNS, 53, "UDP")
    if ns.name != "monitoring":  # Prometheus's namespace may reach the whole VPC: it scrapes every pod and node
        assert not allowed(POLICIES, stranger, Pod("kube-system", {"k8s-app": "other"}), 53, "UDP")
    assert not allowed(POLICIES, stranger, INTERNET, 80)
    assert not allowed(POLICIES, stranger, Outside("169.254.169.254"), 80)  # no node credentials
    assert not allowed(POLICIES, INTERNET, stranger, 22)
    deny = [p for p in POLICIES if p["metadata"]["namespace"] == ns.name and p["metadata"]["name"] == "default-deny"]
    assert deny and deny[0]["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}


def test_no_cross_namespace_peer_is_a_whole_namespace():
    for p in POLICIES:
        for rule in p["spec"].get("ingress", []) + p["spec"].get("egress", []):
            for peer in rule.get("from", rule.get("to", [])):
                if "namespaceSelector" in peer:
                    assert peer.get("podSelector", {}).get("matchLabels"), (p["metadata"]["namespace"], peer)


def test_the_serving_path_is_open_end_to_end_on_the_add_on_side():
    assert allowed(POLICIES, INTERNET, ENVOY, 10080)  # listener 80 inside the unprivileged proxy
    assert not allowed(POLICIES, INTERNET, ENVOY, 19000)  # Envoy's admin port stays closed
    assert allowed(POLICIES, ENVOY, INTERCEPTOR, 8080)
    assert not allowed(POLICIES, Pod("envoy-gateway-system", {"app": "x"}), INTERCEPTOR, 8080)
    assert allowed(POLICIES, INTERCEPTOR, ENDPOINT_POD, 3000)
    assert not allowed(POLICIES, INTERNET, INTERCEPTOR, 8080)
    assert allowed(POLICIES, ENVOY, MODEL_POD, 3000)


def test_prometheus_scrapes_and_is_queried_only_by_the_analysis_and_keda():
    assert allowed(POLICIES, PROMETHEUS, MLFLOW, 5000)
    assert allowed(POLICIES, PROMETHEUS, Outside("10.10.5.5"), 9100)  # node-exporter on a node
    rollouts = Pod("argo-rollouts", {"app.kubernetes.io/name": "argo-rollouts"})
    assert allowed(POLICIES, rollouts, PROMETHEUS, 9090)
    assert allowed(POLICIES, KEDA_OPERATOR, PROMETHEUS, 9090)
    assert not allowed(POLICIES, MLFLOW, PROMETHEUS, 9090)
    assert not allowed(POLICIES, INTERCEPTOR, PROMETHEUS, 9090)


def test_mlflow_reaches_its_database_and_s3_and_admits_the_model_pods():
    assert allowed(POLICIES, MLFLOW, Outside("10.10.1.40"), 5432)
    assert allowed(POLICIES, MLFLOW, INTERNET, 443)
    assert not allowed(POLICIES, MLFLOW, Outside("10.10.1.40"), 22)
    assert not allowed(POLICIES, MLFLOW, ENVOY, 10080)
    assert allowed(POLICIES, MODEL_POD, MLFLOW, 5000)
    assert not allowed(POLICIES, ENVOY, MLFLOW, 5000)  # the gateway never routes to the registry


def test_webhooks_are_reachable_from_the_control_plane_on_their_port_only():
    eso = Pod("external-secrets", {"app.kubernetes.io/name": "external-secrets-webhook"})
    assert allowed(POLICIES, CONTROL_PLANE, eso, 10250)
    assert not allowed(POLICIES, CONTROL_PLANE, eso, 8080)
    assert not allowed(POLICIES, INTERNET, eso, 10250)
    gpu = Pod("gpu-operator", {"app.kubernetes.io/name": "nvidia-device-plugin"})
    assert allowed(POLICIES, gpu, CONTROL_PLANE, 443)
    assert not allowed(POLICIES, gpu, INTERNET, 443)


def test_every_object_is_schema_valid():
    problems = [p for m in MANIFESTS for p in validate_manifest(m)]
    assert problems == []
