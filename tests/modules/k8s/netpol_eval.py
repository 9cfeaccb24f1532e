"""A small evaluator of NetworkPolicy semantics, so tests ask "may A reach B on port P" of the rendered objects.

Kubernetes rules: a pod is isolated in a direction once any policy of that type selects it; then traffic passes only
if some rule of some selecting policy allows the peer and the port. A connection needs the sender's egress and the
receiver's ingress. A namespace is matched by its `kubernetes.io/metadata.name` label, which the API server sets.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

Manifest = dict[str, Any]


@dataclass(frozen=True)
class Pod:
    namespace: str
    labels: dict[str, str] = field(default_factory=dict)
    ip: str = "10.10.1.5"  # pods take VPC addresses (VPC CNI)


@dataclass(frozen=True)
class Outside:
    ip: str  # a client on the internet, S3, an AWS endpoint, a node


Endpoint = Pod | Outside


def _matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    assert "matchExpressions" not in selector, "the evaluator supports matchLabels only"
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


def _peer(peer: dict[str, Any], policy_ns: str, other: Endpoint) -> bool:
    if "ipBlock" in peer:
        block = peer["ipBlock"]
        ip = ipaddress.ip_address(other.ip)
        excluded = any(ip in ipaddress.ip_network(e) for e in block.get("except", []))
        return ip in ipaddress.ip_network(block["cidr"]) and not excluded
    if not isinstance(other, Pod):
        return False
    if "namespaceSelector" in peer:
        ns_ok = _matches(peer["namespaceSelector"], {"kubernetes.io/metadata.name": other.namespace})
    else:
        ns_ok = other.namespace == policy_ns
    return ns_ok and _matches(peer.get("podSelector", {}), other.labels)


def _port(rule: dict[str, Any], port: int, protocol: str) -> bool:
    ports = rule.get("ports")
    return not ports or any(p.get("protocol", "TCP") == protocol and p.get("port") == port for p in ports)


def _side(policies: list[Manifest], pod: Pod, other: Endpoint, port: int, protocol: str, kind: str) -> bool:
    key, peers_key = ("ingress", "from") if kind == "Ingress" else ("egress", "to")
    selecting = [
        p
        for p in policies
        if p["kind"] == "NetworkPolicy"
        and p["metadata"]["namespace"] == pod.namespace
        and kind in p["spec"].get("policyTypes", [])
        and _matches(p["spec"]["podSelector"], pod.labels)
    ]
    if not selecting:
        return True  # not isolated in this direction
    return any(
        _port(rule, port, protocol) and any(_peer(peer, p["metadata"]["namespace"], other) for peer in rule[peers_key])
        for p in selecting
        for rule in p["spec"].get(key, [])
    )


def allowed(policies: list[Manifest], src: Endpoint, dst: Endpoint, port: int, protocol: str = "TCP") -> bool:
    egress = _side(policies, src, dst, port, protocol, "Egress") if isinstance(src, Pod) else True
    ingress = _side(policies, dst, src, port, protocol, "Ingress") if isinstance(dst, Pod) else True
    return egress and ingress


def isolated(policies: list[Manifest], pod: Pod, kind: str) -> bool:
    return any(
        p["kind"] == "NetworkPolicy"
        and p["metadata"]["namespace"] == pod.namespace
        and kind in p["spec"].get("policyTypes", [])
        and _matches(p["spec"]["podSelector"], pod.labels)
        for p in policies
    )
