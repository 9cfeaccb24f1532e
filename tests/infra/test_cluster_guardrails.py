"""Network policy is enforced and the add-on namespaces exist, labelled and default-deny, before any chart: read from
the synthesized cluster and add-on stacks."""

from __future__ import annotations

import json
from typing import Any

import yaml

from core.promql import SERVING_NAMESPACE
from infra.config import EnvConfig, load_versions
from modules.cluster_services import GATEWAY_NAMESPACE, envoy_container_port
from modules.k8s import image_policy
from modules.k8s.platform import RUNNER_NAMESPACE
from modules.k8s.props import GatewayProps
from modules.k8s.render import namespace as render_namespace
from tests.infra.conftest import Synth


def test_vpc_cni_enforces_network_policies(synth: Synth, env: EnvConfig) -> None:
    addons = synth.resources(env.name, "cluster", "aws_eks_addon").values()
    (cni,) = [a for a in addons if a["addon_name"] == "vpc-cni"]
    assert json.loads(cni["configuration_values"])["enableNetworkPolicy"] == "true"


def _guardrails(synth: Synth, env: EnvConfig) -> tuple[str, list[dict[str, Any]]]:
    releases = synth.resources(env.name, "addons", "helm_release")
    (key,) = [k for k, r in releases.items() if r["name"] == "platform-guardrails"]
    return key, yaml.safe_load(releases[key]["values"][0])["manifests"]


def test_guardrails_create_every_owned_namespace_with_pod_security_and_a_default_deny(
    synth: Synth, env: EnvConfig
) -> None:
    _, manifests = _guardrails(synth, env)
    namespaces = {m["metadata"]["name"]: m for m in manifests if m["kind"] == "Namespace"}
    # The serving namespace too (its ExternalSecrets precede the first release), labelled as the release renders it;
    # its default deny and allows are the release's own (modules/k8s/network.py, tests/modules/k8s/test_network.py).
    serving = namespaces.pop(SERVING_NAMESPACE)
    assert serving["metadata"]["labels"] == render_namespace(SERVING_NAMESPACE)["metadata"]["labels"]
    assert serving["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert set(namespaces) == {c.namespace for c in load_versions().charts.values()} - {"kube-system"}
    for name, ns in namespaces.items():
        assert "pod-security.kubernetes.io/enforce" in ns["metadata"]["labels"], name
        denies = [
            m
            for m in manifests
            if m["kind"] == "NetworkPolicy" and m["metadata"]["namespace"] == name and m["spec"]["podSelector"] == {}
        ]
        assert any(d["spec"]["policyTypes"] == ["Ingress", "Egress"] and "ingress" not in d["spec"] for d in denies)


def test_every_release_into_an_owned_namespace_waits_for_the_guardrails(synth: Synth, env: EnvConfig) -> None:
    key, manifests = _guardrails(synth, env)
    owned = {m["metadata"]["name"] for m in manifests if m["kind"] == "Namespace"}
    for name, r in synth.resources(env.name, "addons", "helm_release").items():
        if r["namespace"] in owned:
            assert r.get("create_namespace") is False, name
            assert any(f"helm_release.{key}" in d for d in r.get("depends_on", [])), name


def test_the_vpc_cidr_in_the_policies_is_the_environments(synth: Synth, env: EnvConfig) -> None:
    _, manifests = _guardrails(synth, env)
    blocks = {
        peer["ipBlock"]["cidr"]
        for m in manifests
        if m["kind"] == "NetworkPolicy"
        for rule in m["spec"].get("ingress", []) + m["spec"].get("egress", [])
        for peer in rule.get("from", rule.get("to", []))
        if "ipBlock" in peer
    }
    assert env.network.cidr in blocks and blocks <= {env.network.cidr, "0.0.0.0/0"}


def test_the_rollouts_controller_verifies_the_plugin_it_downloads(synth: Synth, env: EnvConfig) -> None:
    releases = synth.resources(env.name, "addons", "helm_release").values()
    (rollouts,) = [r for r in releases if r["chart"] == "argo-rollouts"]
    (plugin,) = yaml.safe_load(rollouts["values"][0])["controller"]["trafficRouterPlugins"]
    versions = load_versions()
    assert plugin["location"].startswith("https://") and versions.argo_rollouts_gateway_plugin in plugin["location"]
    assert plugin["sha256"] == versions.argo_rollouts_gateway_plugin_sha256


def test_the_internet_reaches_the_proxies_on_the_https_and_redirect_listeners_only(
    synth: Synth, env: EnvConfig
) -> None:
    """The Gateway's listeners (HTTPS and the redirecting HTTP one) are the only ports the load balancer may reach,
    at the unprivileged container ports Envoy Gateway maps them to."""
    _, manifests = _guardrails(synth, env)
    (allow,) = [
        m
        for m in manifests
        if m["kind"] == "NetworkPolicy"
        and m["metadata"]["namespace"] == GATEWAY_NAMESPACE
        and m["metadata"]["name"] == "allow-platform"
    ]
    from_anywhere = [r for r in allow["spec"]["ingress"] if {"ipBlock": {"cidr": "0.0.0.0/0"}} in r.get("from", [])]
    ports = {p["port"] for r in from_anywhere for p in r["ports"]}
    g = GatewayProps()
    assert ports == {envoy_container_port(g.https_port), envoy_container_port(g.listener_port)}


def test_images_without_a_digest_are_refused_in_serving_and_reported_in_every_other_owned_namespace(
    synth: Synth, env: EnvConfig
) -> None:
    _, manifests = _guardrails(synth, env)
    bindings = {
        tuple(m["spec"]["validationActions"]): m["spec"]["matchResources"]["namespaceSelector"]["matchExpressions"][0]
        for m in manifests
        if m["kind"] == "ValidatingAdmissionPolicyBinding"
    }
    assert [m["metadata"]["name"] for m in manifests if m["kind"] == "ValidatingAdmissionPolicy"] == [image_policy.NAME]
    enforced, audited = set(bindings[("Deny",)]["values"]), set(bindings[("Warn", "Audit")]["values"])
    assert SERVING_NAMESPACE in enforced and not enforced & audited
    owned = {m["metadata"]["name"] for m in manifests if m["kind"] == "Namespace"}
    assert enforced | audited == owned  # every namespace the platform owns is either refused or reported
    # The runners' namespace refuses only once its image carries a digest (versions.yaml arc_runner_image).
    assert (RUNNER_NAMESPACE in enforced) == image_policy.is_pinned(load_versions().arc_runner_image)


def test_each_charts_recorded_image_digests_reach_its_release_as_a_second_values_document(
    synth: Synth, env: EnvConfig
) -> None:
    releases = synth.resources(env.name, "addons", "helm_release").values()
    versions = load_versions()
    pinned = {key: chart for key, chart in versions.charts.items() if chart.images}
    assert pinned, "no chart image is pinned by digest in infra/config/versions.yaml"
    for key, chart in pinned.items():
        ours = [r for r in releases if r["chart"] == chart.chart and r["version"] == chart.version]
        assert ours, key
        for release in ours:
            assert len(release["values"]) == 2, f"{key}: {release['name']}"
            pins = yaml.safe_load(release["values"][1])
            for image in chart.images:
                node = pins
                for part in image.values.split("."):
                    node = node[part]
                assert node == image.value and image.digest.removeprefix("sha256:") in node
