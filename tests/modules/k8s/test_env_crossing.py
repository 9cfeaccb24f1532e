"""Every setting crosses the boundary on purpose: each `MLP_*` variable a rendered model-server container sets is
read by the server's code, and each one the server reads is set (or deliberately left to its default)."""

from __future__ import annotations

import ast
from pathlib import Path

from core import env
from modules.k8s import render_all
from tests.modules.k8s.conftest import by_kind, props

REPO_ROOT = Path(__file__).resolve().parents[3]
# Read by the server but left unset in the cluster on purpose, each with the reason.
DEFAULTED_IN_THE_CLUSTER = {
    env.MODEL_DIR.name: "tests and benchmarks serve a folder; pods always fetch from the registry",
    env.INFERENCE_LOG.name: "on by default; `off` is for bare-server benchmarks",
    env.POLICY.name: "the image carries policy.yaml",
    env.PORT_OFFSET.name: "local environments only",
    env.STATE_DIR.name: "local environments only; pods get MLP_MODEL_CACHE",
}


# What the model server image runs (its imports stay inside these, tests/services/model_server checks the bento).
SERVER_PACKAGES = ("services/model_server", "services/model_runtime", "services/registry")


def read_by(packages: tuple[str, ...]) -> set[str]:
    """`MLP_*` names the packages' code reads through core.env (`env.X.get()` / `env.X.is_set()`)."""
    by_attr = {attr: v.name for attr, v in vars(env).items() if isinstance(v, env.EnvVar)}
    names: set[str] = set()
    for path in (p for package in packages for p in (REPO_ROOT / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Attribute)
                and node.attr in {"get", "is_set", "raw"}
                and isinstance(node.value, ast.Attribute)
                and node.value.attr in by_attr
            ):
                names.add(by_attr[node.value.attr])
    return names


def test_model_server_env_and_code_agree() -> None:
    server_reads = read_by(SERVER_PACKAGES)
    assert env.MODEL_VERSION.name in server_reads  # the scan finds what the server reads
    for gpu in (False, True):
        for deployment in by_kind(render_all(props(gpu=gpu)), "Deployment"):
            for container in deployment["spec"]["template"]["spec"]["containers"]:
                sets = {e["name"] for e in container["env"] if e["name"].startswith("MLP_")}
                assert sets <= server_reads, f"set in the manifest but read by nothing: {sorted(sets - server_reads)}"
                unset = server_reads - sets - set(DEFAULTED_IN_THE_CLUSTER)
                if not gpu:  # a CPU pod has no GPU memory to cap
                    unset.discard(env.GPU_MEMORY_LIMIT_BYTES.name)
                assert not unset, f"read by the server but not set by the manifest: {sorted(unset)}"
