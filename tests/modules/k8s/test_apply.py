"""A second release applied over the first, the way the release workflow applies it, must leave KEDA's replicas and
the rollouts plugin's route weights alone.

The model of server-side apply here is the API server's, reduced to what decides the question: every field an apply
sends is owned by its field manager; a field another manager owns with a different value is a conflict (the apply
fails, or with --force-conflicts takes it back); a list without merge keys is one atomic field (the Gateway API marks
`HTTPRoute.spec.rules` `listType=atomic`, so a weight cannot be owned apart from its rules). Controllers write with
plain updates and so take ownership of what they change.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.env import MODEL_VERSION
from modules.k8s import render, render_all, write
from modules.k8s.versions import GATEWAY_API_PLUGIN
from tests.modules.k8s.conftest import props

Key = tuple[str, str, str]  # kind, namespace, name
Path_ = tuple[str, ...]
KEDA = "keda-operator"  # KEDA's HPA writes replicas through the scale subresource
PLUGIN = "argo-rollouts"  # the Gateway API plugin runs inside the rollouts controller


def key(m: dict[str, Any]) -> Key:
    return m["kind"], m["metadata"].get("namespace", ""), m["metadata"]["name"]


def fields(obj: Any, prefix: Path_ = ()) -> dict[Path_, Any]:
    """Leaf fields of an applied object; lists are atomic (true of the lists that matter here, conservative else)."""
    if isinstance(obj, dict) and obj:
        out: dict[Path_, Any] = {}
        for k, v in obj.items():
            out.update(fields(v, (*prefix, k)))
        return out
    return {prefix: obj}


def get(obj: dict[str, Any], path: Path_) -> Any:
    for part in path:
        obj = obj[part]
    return obj


def put(obj: dict[str, Any], path: Path_, value: Any) -> None:
    for part in path[:-1]:
        obj = obj.setdefault(part, {})
    obj[path[-1]] = value


class Cluster:
    def __init__(self) -> None:
        self.live: dict[Key, dict[str, Any]] = {}
        self.owners: dict[Key, dict[Path_, str]] = {}
        self.conflicts: list[str] = []
        self.asserted: dict[Key, set[Path_]] = {}  # what the platform's last apply of each object claimed

    def apply(self, manager: str, manifest: dict[str, Any]) -> None:
        k = key(manifest)
        live = self.live.setdefault(k, {})
        owners = self.owners.setdefault(k, {})
        sent = fields(manifest)
        for path, value in sent.items():
            owner = owners.get(path)
            if owner not in (None, manager) and get(live, path) != value:
                self.conflicts.append(f"{k} {'.'.join(path)}: owned by {owner}")
            put(live, path, copy.deepcopy(value))
            owners[path] = manager
        self.asserted[k] = set(sent)

    def create(self, manager: str, manifest: dict[str, Any]) -> bool:
        if key(manifest) in self.live:
            return False
        self.apply(manager, manifest)
        return True

    def controller_update(self, manager: str, k: Key, path: Path_, value: Any) -> None:
        put(self.live[k], path, value)
        self.owners[k][path] = manager


def release(cluster: Cluster, rendered: dict[str, list[dict[str, Any]]], out: Path) -> None:
    """What `.github/workflows/model-release.yml` does with `mlp render k8s --out build/k8s`."""
    write(rendered, out)
    for path in sorted(out.glob("*.yaml")):  # kubectl apply --server-side -f build/k8s/ (not recursive)
        for m in yaml.safe_load_all(path.read_text()):
            cluster.apply(render.FIELD_MANAGER, m)
    for path in sorted((out / render.CREATE_ONCE).glob("*.yaml")):  # created if absent, never re-applied
        for m in yaml.safe_load_all(path.read_text()):
            cluster.create(render.FIELD_MANAGER, m)


def scale_targets(rendered: dict[str, list[dict[str, Any]]]) -> set[Key]:
    return {
        (so["spec"]["scaleTargetRef"]["kind"], so["metadata"]["namespace"], so["spec"]["scaleTargetRef"]["name"])
        for ms in rendered.values()
        for so in ms
        if so["kind"] == "ScaledObject"
    }


def plugin_routes(rendered: dict[str, list[dict[str, Any]]]) -> set[Key]:
    out = set()
    for ms in rendered.values():
        for ro in ms:
            if ro["kind"] == "Rollout":
                cfg = ro["spec"]["strategy"]["canary"]["trafficRouting"]["plugins"][GATEWAY_API_PLUGIN]
                out.add(("HTTPRoute", cfg["namespace"], cfg["httpRoute"]))
    return out


def controllers_act(cluster: Cluster, rendered: dict[str, list[dict[str, Any]]]) -> dict[Key, Any]:
    """KEDA scales every target to 5; the plugin puts the canary at 30% on every route it manages."""
    expected: dict[Key, Any] = {}
    for k in scale_targets(rendered):
        cluster.controller_update(KEDA, k, ("spec", "replicas"), 5)
        expected[k] = 5
    for k in plugin_routes(rendered):
        rules = copy.deepcopy(cluster.live[k]["spec"]["rules"])
        for rule in rules:
            for ref in rule["backendRefs"]:
                ref["weight"] = 30 if ref["name"].endswith("-canary") else 70
        cluster.controller_update(PLUGIN, k, ("spec", "rules"), rules)
        expected[k] = rules
    return expected


@pytest.mark.parametrize(
    ("mode", "first", "second"),
    [("rollout", {3: 100}, {3: 100, 4: 0}), ("deployments", {3: 100}, {3: 90, 4: 10})],
)
def test_second_release_leaves_keda_replicas_and_plugin_weights_alone(
    tmp_path: Path, mode: str, first: dict[int, int], second: dict[int, int]
) -> None:
    cluster = Cluster()
    one = render_all(props(mode, weights=first))
    release(cluster, one, tmp_path / "one")
    assert not cluster.conflicts
    owned_by_controllers = controllers_act(cluster, one)
    assert owned_by_controllers, "nothing is scaled by KEDA or routed by the plugin: the test checks nothing"

    two = render_all(props(mode, weights=second))
    cluster.asserted.clear()
    release(cluster, two, tmp_path / "two")

    assert not cluster.conflicts, "the platform's apply takes fields back:\n" + "\n".join(cluster.conflicts)
    for k in scale_targets(two):
        assert ("spec", "replicas") not in cluster.asserted.get(k, set()), f"{k} asserts KEDA's spec.replicas"
        if k in owned_by_controllers:  # scaled after the first release (a new version's Deployment is not yet)
            assert cluster.live[k]["spec"]["replicas"] == owned_by_controllers[k]
    for k in plugin_routes(two):
        assert ("spec", "rules") not in cluster.asserted.get(k, set()), f"{k} asserts the plugin's weights"
        assert cluster.live[k]["spec"]["rules"] == owned_by_controllers[k], f"{k}: the plugin's weights were reset"
        assert cluster.owners[k][("spec", "rules")] == PLUGIN
    # ...while what the platform does own moves on: the second release's version is the one the pods run.
    if mode == "rollout":
        rollout = next(v for k, v in cluster.live.items() if k[0] == "Rollout")
        env = {e["name"]: e.get("value") for e in rollout["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert env[MODEL_VERSION.name] == str(max(second))
        pins = next(v for k, v in cluster.live.items() if k[0] == "HTTPRoute" and k[2].endswith("-pins"))
        assert {r["matches"][0]["headers"][0]["value"] for r in pins["spec"]["rules"]} == {str(v) for v in second}


def test_every_scaled_workload_leaves_replicas_out_and_the_plugin_route_is_create_once() -> None:
    for mode, gpu in [("deployments", False), ("deployments", True), ("rollout", False), ("rollout", True)]:
        rendered = render_all(props(mode, gpu))
        objects = {key(m): m for ms in rendered.values() for m in ms}
        targets = scale_targets(rendered)
        assert targets and targets <= set(objects)
        for k in targets:
            assert "replicas" not in objects[k]["spec"], f"{mode}: {k} renders spec.replicas"
        once = {key(m) for c in render.CREATE_ONCE_CONCERNS for m in rendered.get(c, [])}
        assert plugin_routes(rendered) == once


def test_the_old_rendering_would_have_fought(tmp_path: Path) -> None:
    """The check above is able to fail: with replicas rendered and the weighted route re-applied, it conflicts."""
    cluster = Cluster()
    one = render_all(props("rollout", weights={3: 100}))
    for ms in one.values():
        for m in ms:
            if m["kind"] == "Rollout":
                m["spec"]["replicas"] = 2
    old_layout = {"all": [m for ms in one.values() for m in ms]}  # everything applied every time
    release(cluster, old_layout, tmp_path / "one")
    controllers_act(cluster, one)
    release(cluster, old_layout, tmp_path / "two")
    assert any("spec.replicas" in c for c in cluster.conflicts)
    assert any("spec.rules" in c for c in cluster.conflicts)
