"""Render every cluster manifest from the policy and write them as YAML, one file per concern."""

from __future__ import annotations

from pathlib import Path

import yaml

from core.policy import Policy, policy
from modules.k8s import common as c
from modules.k8s import gateway, monitoring, release, scaling, serving
from modules.k8s.props import RenderProps


def namespace(name: str) -> c.Manifest:
    # Pod Security Admission "restricted": the API server itself rejects a pod that drops the hardening.
    labels = {
        "app.kubernetes.io/part-of": c.PART_OF,
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/audit": "restricted",
    }
    return c.manifest("v1", "Namespace", c.metadata(name, None, labels))


def render_all(props: RenderProps, pol: Policy | None = None) -> dict[str, list[c.Manifest]]:
    """Concern -> manifests. Deployment mode: a Deployment per live version behind weighted HTTPRoute rules;
    rollout mode: one Argo Rollout (canary = newest version) whose weights the Gateway API plugin moves."""
    p = pol or policy()
    s, g, m = props.serving, props.gateway, props.monitoring
    ns = s.namespace
    name = props.model_name
    route = gateway.route_name(name)
    out: dict[str, list[c.Manifest]] = {
        "namespace": [
            namespace(ns),
            serving.service_account(s, name),
            serving.network_policy(s, name, s.ingress_namespaces),
        ],
        "serving": [],
        "gateway": gateway.gateway_manifests(g, ns),
        "scaling": [],
        "monitoring": [],
    }
    if props.mode == "deployments":
        out["serving"] = serving.serving_manifests(s, p, name, props.versions)
        weights = {c.version_name(name, v): w for v, w in sorted(props.weights.items())}
        pins = {v: c.version_name(name, v) for v in props.versions}
        out["scaling"] = [scaling.deployment_scaler(s, p, name, v) for v in props.versions]
    else:
        canary, stable = props.canary_version, props.stable_version
        out["release"] = release.release_manifests(s, p, name, canary, stable, route)
        # The plugin owns these weights during a release: it starts with everything on stable.
        weights = {release.stable_service_name(name): 100, release.canary_service_name(name): 0}
        pins = {stable: release.stable_service_name(name)}
        if canary != stable:
            pins[canary] = release.canary_service_name(name)
        out["scaling"] = [scaling.rollout_scaler(s, p, name)]
    out["gateway"].append(gateway.http_route(g, p, name, ns, weights, pins))
    out["gateway"].append(gateway.backend_traffic_policy(g, p, name, ns))
    for endpoint in p.scaling.non_critical_endpoints:
        out["scaling"].extend(scaling.scale_to_zero_manifests(s, p, name, props.stable_version, endpoint, g.hostname))
    out["gateway"].extend(gateway.endpoint_manifests(g, p, name, ns, p.scaling.non_critical_endpoints))
    out["monitoring"] = [
        serving.pod_monitor(s, name, m.prometheus_release_label),
        monitoring.prometheus_rule(ns, m.prometheus_release_label),
        *monitoring.dashboard_configmaps(ns),
        monitoring.drift_service_account(s, m, name),
        monitoring.drift_cronjob(s, m, p, name),
    ]
    if s.gpu:
        out["monitoring"].append(monitoring.dcgm_service_monitor(m))
    return out


def to_yaml(manifests: list[c.Manifest]) -> str:
    return yaml.safe_dump_all(manifests, sort_keys=False, width=1000)


def write(rendered: dict[str, list[c.Manifest]], out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for concern, manifests in rendered.items():
        path = out_dir / f"{concern}.yaml"
        path.write_text(to_yaml(manifests))
        paths.append(path)
    return paths
