"""Every setting crosses the pod boundary on purpose: the `MLP_*` variables each rendered container sets against
the ones the code it runs reads (`env.X.get()`, `.is_set()`, `.raw()`, or a CLI option's `envvar=env.X.name`,
anywhere in its import closure). A name on one side only fails the test unless it is listed below with its reason."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest

from core import env, images
from core.policy import policy
from modules.k8s import RenderProps, ServingProps, WebhookProps, render_all
from tests.services.model_server.test_container_build import REPO, imported_closure

READ_CALLS = {"get", "is_set", "raw"}
ATTR_TO_NAME = {attr: var.name for attr, var in vars(env).items() if isinstance(var, env.EnvVar)}

# Read by the code, deliberately not set in a cluster pod: the default is the cluster's value.
NOT_SET_ON_PURPOSE = {
    env.POLICY.name: "the image carries policy.yaml where the loader looks by default",
    env.PORT_OFFSET.name: "shifts local loopback ports only",
    env.STATE_DIR.name: "local runtime state; a pod keeps nothing but the model cache",
    env.MODEL_DIR.name: "tests and benchmarks serve a folder without the registry",
    env.INFERENCE_LOG.name: "`off` only for bare-server benchmarks",
    env.GITHUB_API_URL.name: "the default is GitHub's API; tests point it at a stand-in",
    env.WEBHOOK_RELEASE_ARGS.name: "arguments of a locally started release; the cluster dispatches to GitHub",
    env.ALERTMANAGER_TOKEN.name: "the cluster's Alertmanager delivers to PagerDuty and Slack, not to this receiver; "
    "without a token the receiver refuses every alert delivery",
}
ENTRY_POINTS = {
    "model-server": "services.model_server.service",
    "drift-check": "pipelines.drift.job",
    "webhook-receiver": "services.webhook.app",
}


def variables_read(module: str) -> set[str]:
    found: set[str] = set()
    for rel in imported_closure(module):
        tree = ast.parse((REPO / rel).read_text())
        aliases = {
            a.asname or a.name
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module == "core"
            for a in node.names
            if a.name == "env"
        }
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and node.attr in READ_CALLS
                and isinstance(node.value, ast.Attribute)
                and isinstance(node.value.value, ast.Name)
                and node.value.value.id in aliases
                and node.value.attr in ATTR_TO_NAME
            ):
                found.add(ATTR_TO_NAME[node.value.attr])
            # A CLI option read from the environment: typer.Option(envvar=env.X.name).
            if (
                isinstance(node, ast.keyword)
                and node.arg == "envvar"
                and isinstance(node.value, ast.Attribute)
                and isinstance(node.value.value, ast.Attribute)
                and isinstance(node.value.value.value, ast.Name)
                and node.value.value.value.id in aliases
                and node.value.value.attr in ATTR_TO_NAME
            ):
                found.add(ATTR_TO_NAME[node.value.value.attr])
    return found


def rendered_containers() -> dict[str, set[str]]:
    """Container name -> the `MLP_*` names it sets, over the CPU and the GPU variant."""
    out: dict[str, set[str]] = {}
    for gpu in (False, True):
        props = RenderProps(
            model_name=policy().release.default_model,
            weights={1: 100},
            serving=ServingProps(
                image_repository=f"registry/{images.model_server(gpu)}",
                image_tag="t",
                irsa_role_arn="arn:aws:iam::123456789012:role/x",
                inference_log_bucket="logs",
                mlflow_tracking_uri="http://mlflow",
                gpu=gpu,
            ),
            webhook=WebhookProps(github_repository="acme/platform"),
        )
        for manifest in (m for ms in render_all(props).values() for m in ms):
            for container in pod_containers(manifest):
                names = {e["name"] for e in container.get("env", []) if e["name"].startswith("MLP_")}
                out.setdefault(container["name"], set()).update(names)
    return out


def pod_containers(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    spec = manifest.get("spec", {})
    template = spec.get("jobTemplate", {}).get("spec", {}).get("template") or spec.get("template") or {}
    return list(template.get("spec", {}).get("containers", []))


def test_the_reader_finds_what_the_model_server_reads() -> None:
    assert {env.MODEL_VERSION.name, env.MODEL_CACHE.name} <= variables_read("services.model_server.service")


@pytest.mark.parametrize("container", sorted(ENTRY_POINTS))
def test_every_variable_a_container_sets_is_read_and_every_one_read_is_set(container: str) -> None:
    rendered = rendered_containers()[container]
    read = variables_read(ENTRY_POINTS[container])
    set_not_read = rendered - read
    read_not_set = read - rendered - set(NOT_SET_ON_PURPOSE)
    assert (set_not_read, read_not_set) == (set(), set()), (
        f"{container}: set but never read {sorted(set_not_read)}; read but never set {sorted(read_not_set)}"
    )


def test_reasons_name_declared_variables() -> None:
    declared = {v.name for v in env.ALL}
    assert set(NOT_SET_ON_PURPOSE) <= declared
    assert Path(REPO / "core" / "env.py").is_file()
