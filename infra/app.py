"""Build the cdktn App: every layer of every requested environment, wired by cross-stack references."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

# jsii prints a banner on every start under Node 20; CI and docs ask for Node 22+ (docs/decisions/0060).
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from cdktn import App, TerraformStack

from infra.config import ENVIRONMENTS, load_env
from infra.stacks.addons import AddonsStack
from infra.stacks.cluster import ClusterStack
from infra.stacks.data import DataStack
from infra.stacks.network import NetworkStack

INFRA_DIR = Path(__file__).resolve().parent
DEFAULT_OUTDIR = INFRA_DIR / "cdktf.out"
# S3 native state locking (use_lockfile) needs Terraform 1.10+; cdktn validates features against this target.
TARGET_VERSIONS = {"terraform": ">=1.10.0"}


def add_environment(app: App, name: str) -> list[TerraformStack]:
    env = load_env(name)
    network = NetworkStack(app, env)
    cluster = ClusterStack(app, env, network.outputs)
    data = DataStack(app, env, network.outputs, cluster.outputs)
    addons = AddonsStack(app, env, cluster.outputs, data.outputs)
    return [network, cluster, data, addons]


def build_app(environments: Iterable[str] = ENVIRONMENTS, outdir: Path | str | None = None) -> App:
    outdir = outdir or os.environ.get("CDKTF_OUTDIR") or DEFAULT_OUTDIR
    app = App(outdir=str(outdir), context={"targetVersions": TARGET_VERSIONS})
    for name in environments:
        add_environment(app, name)
    return app
