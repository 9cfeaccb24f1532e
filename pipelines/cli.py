"""`mlp`: one entry point for the model lifecycle and the local environment.

Each command group lives in `pipelines/commands/<group>.py` with a Typer app of its own.
"""

from __future__ import annotations

import sys

import typer

from core.policy import PolicyError
from pipelines.commands import alerts, cost, drift, env, images, model, obs, policy_cmd, release, render, serve

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
app.add_typer(env.app, name="env", help="Local environment: up, down, status.")
app.add_typer(model.app, name="model", help="Package, register and gate model versions.")
app.add_typer(serve.app, name="serve", help="Model servers and the gateway (local runtime).")
app.add_typer(release.app, name="release", help="Canary releases: start, status, abort, weights.")
app.add_typer(obs.app, name="obs", help="Prometheus rules and Grafana dashboards.")
app.add_typer(alerts.app, name="alerts", help="Active alerts and recent notifications, with runbooks.")
app.add_typer(drift.app, name="drift", help="Drift checks on logged inferences.")
app.add_typer(cost.app, name="cost", help="Cost per 1,000 inferences.")
app.add_typer(render.app, name="render", help="Render cluster manifests from the policy.")
app.add_typer(images.app, name="images", help="Build the cluster's images with podman (cached by content).")
app.add_typer(policy_cmd.app, name="policy", help="Validate the policy and export its schema.")


def main() -> None:
    try:
        app()
    except PolicyError as exc:
        typer.secho(str(exc), fg="red", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
