"""Render every cluster manifest from the policy and write them as YAML, one file per concern.

How they are applied (`.github/workflows/model-release.yml`): server-side apply of the top folder under one field
manager (`FIELD_MANAGER`), so the platform asserts only the fields it renders. Two kinds of field belong to
controllers and are never rendered for re-apply: `spec.replicas` of every Deployment or Rollout a ScaledObject
scales (KEDA's HPA owns it; the manifests leave it out), and the HTTPRoute whose weights the Argo Rollouts Gateway
API plugin moves: its `spec.rules` is an atomic list, so any apply of it would take the weights back. That route is
written to `CREATE_ONCE/`, created on the first release and left to the plugin afterwards.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from core import contracts, dashboards, rules
from core.policy import Policy, policy
from modules.k8s import common as c
from modules.k8s import gateway, monitoring, network, rag, release, scaling, serving, webhook
from modules.k8s.props import RenderProps

FIELD_MANAGER = "mlp-platform"  # the server-side apply field manager of every platform apply
CREATE_ONCE = "create-once"  # sub-folder of objects created once, then owned by a controller (not re-applied)
# Concerns written to CREATE_ONCE/: the canary route of rollout mode (its weights are the plugin's).
CREATE_ONCE_CONCERNS = frozenset({"traffic"})
# Why a task other than classify has no GPU variant (the GPU image carries ONNX Runtime's CUDA build and the
# classifier's service only; decisions 0124 and 0177).
GPU_REFUSALS = {
    "generate": "it runs on llama.cpp, which the CPU model-server image carries and the GPU image does not "
    "(docs/generation.md)",
    "embed": "its server runs on the CPU model-server image; the GPU image carries the classifier's service only "
    "(docs/serving-cluster.md, The embed and rag models)",
    "rag": "its server only calls the embedder, the generator and Qdrant, on the CPU model-server image "
    "(docs/serving-cluster.md, The embed and rag models)",
}


def namespace(name: str) -> c.Manifest:
    # Pod Security Admission "restricted": the API server itself rejects a pod that drops the hardening.
    labels = {
        "app.kubernetes.io/part-of": c.PART_OF,
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/audit": "restricted",
    }
    return c.manifest("v1", "Namespace", c.metadata(name, None, labels))


def render_all(props: RenderProps, pol: Policy | None = None) -> dict[str, list[c.Manifest]]:
    """Concern -> manifests for one catalogue model and the platform-wide objects beside it (namespace, Gateway,
    rules and dashboards of the whole catalogue). Deployment mode: a Deployment per live version behind weighted
    HTTPRoute rules; rollout mode: one Argo Rollout (canary = newest version) whose weights the Gateway API plugin
    moves. A non-critical model scales to zero behind the KEDA HTTP interceptor."""
    name = props.model_name
    p = (pol or policy()).for_model(name)  # raises naming the catalogue if the model is not in it
    task = p.model(name).task
    contracts.service_ref(task)  # raises for a task no server serves yet
    s, g, m = props.serving, props.gateway, props.monitoring
    if s.gpu and task != "classify":
        raise ValueError(f"{name} is a {task} model: {GPU_REFUSALS[task]}: render it without --gpu")
    ns = s.namespace
    out: dict[str, list[c.Manifest]] = {
        "namespace": [
            namespace(ns),
            serving.service_account(s, name),
            *network.serving_network_policies(s, g, p, name),
        ],
        "serving": [c.artifact_key_config_map(ns, s.artifact_public_key)] if s.artifact_public_key else [],
        "gateway": gateway.gateway_manifests(g, p, ns),
        "scaling": [],
        "monitoring": [],
    }
    if p.model(name).critical:
        _critical_model(props, p, out)
    else:
        _scale_to_zero_model(props, p, out)
    out["monitoring"] = [
        serving.pod_monitor(s, name, m.prometheus_release_label),
        monitoring.prometheus_rule(ns, m.prometheus_release_label, rules.rule_groups(p)),
        *monitoring.dashboard_configmaps(ns, dashboards.dashboards(p)),
    ]
    if p.model(name).task == "classify":  # drift watches a classifier's inputs (its inference log)
        out["monitoring"] += [monitoring.drift_service_account(s, m, name), monitoring.drift_cronjob(s, m, p, name)]
    if task == "rag":  # its pods call the embedder, the generator and Qdrant (rag.py)
        rag.attach(out, p, name, s, g)
    if s.gpu:
        out["monitoring"].append(monitoring.dcgm_service_monitor(m))
    if props.webhook is not None:
        out["webhook"] = webhook.manifests(s, props.webhook)
    return out


def _critical_model(props: RenderProps, p: Policy, out: dict[str, list[c.Manifest]]) -> None:
    s, g, name, ns = props.serving, props.gateway, props.model_name, props.serving.namespace
    route = gateway.route_name(name)
    if props.mode == "deployments":
        out["serving"] += serving.serving_manifests(s, p, name, props.versions)
        weights = {c.version_name(name, v): w for v, w in sorted(props.weights.items())}
        pins = {v: c.version_name(name, v) for v in props.versions}
        out["scaling"] = [scaling.deployment_scaler(s, p, name, v) for v in props.versions]
        # The platform sets these weights itself (`--versions`): applied every release.
        out["gateway"].append(gateway.http_route(g, p, name, ns, weights))
    else:
        canary, stable = props.canary_version, props.stable_version
        out["release"] = release.release_manifests(s, props.monitoring, p, name, canary, stable, route)
        pins = {stable: release.stable_service_name(name)}
        if canary != stable:
            pins[canary] = release.canary_service_name(name)
        out["scaling"] = [scaling.rollout_scaler(s, p, name)]
        # The plugin owns the weighted route: created once with everything on stable, then moved only by it. The
        # version pins change every release, so they live in a route of their own the platform applies each time.
        weights = {release.stable_service_name(name): 100, release.canary_service_name(name): 0}
        # The shadow mirror is part of the created-once rule: it mirrors only while a canary pod exists.
        shadow = release.shadows(p, name)
        mirror = (release.shadow_service_name(name), p.canary.shadow.share_percent) if shadow else None
        out["traffic"] = [gateway.http_route(g, p, name, ns, weights, mirror=mirror)]
    out["gateway"].append(gateway.pin_route(g, p, name, ns, pins))
    out["gateway"].append(gateway.internal_security_policy(g, name, ns))
    out["gateway"].append(gateway.backend_traffic_policy(g, p, name, ns, route=gateway.pin_route_name(name)))
    out["gateway"].append(gateway.backend_traffic_policy(g, p, name, ns))


def _scale_to_zero_model(props: RenderProps, p: Policy, out: dict[str, list[c.Manifest]]) -> None:
    """The interceptor routes by Host to one Service: a non-critical model runs one version (a release replaces it;
    the weighted canary of the local runtime has no cluster counterpart here, docs/catalogue.md)."""
    s, g, name, ns = props.serving, props.gateway, props.model_name, props.serving.namespace
    if props.mode != "deployments" or len(props.weights) != 1:
        raise ValueError(
            f"{name} is non-critical (scales to zero behind the KEDA HTTP interceptor, which routes to one Service): "
            f"render it in deployments mode with one version (e.g. --versions {props.canary_version}=100)"
        )
    *servers, interceptor_route, scaler = scaling.scale_to_zero_manifests(s, p, name, props.stable_version, g.hostname)
    out["serving"] += servers
    out["scaling"] = [interceptor_route, scaler]
    cold = scaling.cold_start_request_seconds(p)
    out["gateway"] += [
        gateway.interceptor_route(g, p, name, ns),
        gateway.interceptor_grant(ns),
        gateway.backend_traffic_policy(g, p, name, ns, timeout_seconds=cold),
    ]


def to_yaml(manifests: list[c.Manifest]) -> str:
    return yaml.safe_dump_all(manifests, sort_keys=False, width=1000)


def write(rendered: dict[str, list[c.Manifest]], out_dir: Path) -> list[Path]:
    """One file per concern in `out_dir` (applied every time), `CREATE_ONCE_CONCERNS` in `out_dir/CREATE_ONCE/`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for concern, manifests in rendered.items():
        folder = out_dir / CREATE_ONCE if concern in CREATE_ONCE_CONCERNS else out_dir
        folder.mkdir(exist_ok=True)
        path = folder / f"{concern}.yaml"
        path.write_text(to_yaml(manifests))
        paths.append(path)
    return paths
