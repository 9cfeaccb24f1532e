"""NetworkPolicy building blocks: peers by pod labels (plus the namespace they live in), exact ports, default deny.

Enforced by the VPC CNI's network-policy agent (modules/eks_addons.py turns it on). Every namespace the platform
owns starts from `default_deny` (both directions) and adds precise allows built here.
"""

from __future__ import annotations

from typing import Any

from modules.cluster_services import KUBE_DNS_PODS
from modules.k8s import common as c

Peer = dict[str, Any]
Port = dict[str, Any]
NAMESPACE_LABEL = "kubernetes.io/metadata.name"  # set by the API server on every namespace: cannot be forged
API = "networking.k8s.io/v1"


def pods(namespace: str, labels: dict[str, str]) -> Peer:
    """Pods with `labels` in `namespace` (both selectors in one peer: AND, not OR)."""
    if not labels:
        raise ValueError(f"a peer in {namespace} must select pods by label, not the whole namespace")
    return {
        "namespaceSelector": {"matchLabels": {NAMESPACE_LABEL: namespace}},
        "podSelector": {"matchLabels": dict(labels)},
    }


def same_namespace() -> Peer:
    """Every pod of the policy's own namespace (add-on components talking to each other)."""
    return {"podSelector": {}}


def cidr(block: str) -> Peer:
    return {"ipBlock": {"cidr": block}}


def tcp(*ports: int) -> list[Port]:
    return [{"protocol": "TCP", "port": p} for p in ports]


def rule(peers: list[Peer], ports: list[Port] | None = None) -> dict[str, Any]:
    """One ingress or egress rule; the caller puts it under `from` or `to`."""
    out: dict[str, Any] = {"peers": peers}
    if ports:
        out["ports"] = ports
    return out


def policy(
    name: str,
    namespace: str,
    pod_labels: dict[str, str] | None,
    *,
    ingress: list[dict[str, Any]] | None = None,
    egress: list[dict[str, Any]] | None = None,
    labels: dict[str, str] | None = None,
) -> c.Manifest:
    """An allow policy for the pods with `pod_labels` (None = every pod of the namespace)."""
    spec: dict[str, Any] = {"podSelector": {"matchLabels": dict(pod_labels)} if pod_labels else {}, "policyTypes": []}
    if ingress is not None:
        spec["policyTypes"].append("Ingress")
        spec["ingress"] = [{"from": r["peers"], **({"ports": r["ports"]} if "ports" in r else {})} for r in ingress]
    if egress is not None:
        spec["policyTypes"].append("Egress")
        spec["egress"] = [{"to": r["peers"], **({"ports": r["ports"]} if "ports" in r else {})} for r in egress]
    meta = c.metadata(name, namespace, labels or {"app.kubernetes.io/part-of": c.PART_OF})
    return c.manifest(API, "NetworkPolicy", meta, spec=spec)


def default_deny(namespace: str) -> c.Manifest:
    """Selects every pod and allows nothing, in both directions: whatever is not allowed below is dropped."""
    meta = c.metadata("default-deny", namespace, {"app.kubernetes.io/part-of": c.PART_OF})
    return c.manifest(API, "NetworkPolicy", meta, spec={"podSelector": {}, "policyTypes": ["Ingress", "Egress"]})


def allow_dns(namespace: str) -> c.Manifest:
    """Every pod may resolve names through CoreDNS, and nothing else on port 53."""
    ports = [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]
    return policy("allow-dns", namespace, None, egress=[rule([pods("kube-system", KUBE_DNS_PODS)], ports)])
