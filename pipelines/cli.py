"""`mlp`: one entry point for the model lifecycle and the local environment.

Each command group lives in `pipelines/commands/<group>.py` with a Typer app of its own. A group is imported only
when it runs: MLflow, Evidently and the CDK bindings take seconds to load, and `mlp env status` needs none of them.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import typer
from typer.core import TyperGroup
from typer.main import get_command

from core.policy import PolicyError

if TYPE_CHECKING:
    from typer import _click  # Typer's own copy of click, whose types its commands carry


def _env() -> typer.Typer:
    from pipelines.commands import env

    return env.app


def _model() -> typer.Typer:
    from pipelines.commands import model

    return model.app


def _serve() -> typer.Typer:
    from pipelines.commands import serve

    return serve.app


def _release() -> typer.Typer:
    from pipelines.commands import release

    return release.app


def _obs() -> typer.Typer:
    from pipelines.commands import obs

    return obs.app


def _alerts() -> typer.Typer:
    from pipelines.commands import alerts

    return alerts.app


def _drift() -> typer.Typer:
    from pipelines.commands import drift

    return drift.app


def _cost() -> typer.Typer:
    from pipelines.commands import cost

    return cost.app


def _render() -> typer.Typer:
    from pipelines.commands import render

    return render.app


def _images() -> typer.Typer:
    from pipelines.commands import images

    return images.app


def _rag() -> typer.Typer:
    from pipelines.commands import rag

    return rag.app


def _policy() -> typer.Typer:
    from pipelines.commands import policy_cmd

    return policy_cmd.app


@dataclass(frozen=True)
class Group:
    load: Callable[[], typer.Typer]
    help: str


GROUPS: dict[str, Group] = {
    "env": Group(_env, "Local environment: up, down, status."),
    "model": Group(_model, "Package, register and gate model versions."),
    "serve": Group(_serve, "Model servers and the gateway (local runtime)."),
    "release": Group(_release, "Canary releases: start, status, abort, weights."),
    "obs": Group(_obs, "Prometheus rules and Grafana dashboards."),
    "alerts": Group(_alerts, "Active alerts and recent notifications, with runbooks."),
    "drift": Group(_drift, "Drift checks on logged inferences."),
    "cost": Group(_cost, "Cost per 1,000 inferences."),
    "render": Group(_render, "Render cluster manifests from the policy."),
    "images": Group(_images, "Build the cluster's images with podman (cached by content)."),
    "rag": Group(_rag, "RAG models: ingest the corpus, gate, register, serve, ask."),
    "policy": Group(_policy, "Validate the policy and export its schema."),
}


class LazyGroups(TyperGroup):
    """The top-level command: lists every group from GROUPS, imports a group only to run it."""

    def get_command(self, ctx: _click.Context, cmd_name: str) -> _click.Command | None:
        # What the help listing reads: the name and help of each group, without importing it.
        group = GROUPS.get(cmd_name)
        return None if group is None else TyperGroup(name=cmd_name, help=group.help)

    def list_commands(self, ctx: _click.Context) -> list[str]:
        return list(GROUPS)

    def resolve_command(
        self, ctx: _click.Context, args: list[str]
    ) -> tuple[str | None, _click.Command | None, list[str]]:
        name, _, rest = super().resolve_command(ctx, args)  # unknown names end here with click's usage error
        assert name is not None
        group = GROUPS[name]
        # Mounted as `add_typer` mounts it: a group even when it has one command (Typer would collapse a lone
        # command into the group itself, and `mlp cost report` would lose its `report`).
        parent = typer.Typer(add_completion=False)
        parent.add_typer(group.load(), name=name, help=group.help)
        command = get_command(parent).commands[name]  # type: ignore[attr-defined]
        return name, command, rest


app = LazyGroups(
    name="mlp", help="One entry point for the model lifecycle and the local environment.", no_args_is_help=True
)


def main() -> None:
    try:
        app.main(prog_name="mlp")
    except PolicyError as exc:
        typer.secho(str(exc), fg="red", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
