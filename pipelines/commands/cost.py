"""`mlp cost` commands."""

from __future__ import annotations

import typer

from core.policy import policy
from infra.local.paths import build_dir

app = typer.Typer(no_args_is_help=True)


@app.command("report")
def report(
    variant: str = typer.Option("", help="Packaged variant to measure (default: first of int8, fp32 present)"),
    seconds: float = typer.Option(2.0, min=0.2, help="Measurement time per batch size"),
    busy_hours: float = typer.Option(2.0, min=0, max=24, help="Scale-to-zero scenario: busy hours per day"),
    bursts: float = typer.Option(12.0, min=0, help="Scale-to-zero scenario: bursts (cold starts) per day"),
) -> None:
    """Cost per 1,000 inferences on CPU (measured here) and GPU (measured where docs/measurements holds a run of that
    GPU, else the policy's published estimate) -> build/reports/cost.*"""
    from pipelines.cost import report as rep

    inputs = rep.ScenarioInputs(busy_hours_per_day=busy_hours, bursts_per_day=bursts)
    try:
        done = rep.run(policy(), build_dir(), inputs, variant=variant, seconds=seconds, progress=typer.echo)
    except rep.NoPackagedModel as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(1) from exc
    result = done.result
    typer.echo(f"CPU: ${result['cpu']['usd_per_1k']:.6f} per 1,000 inferences on {result['cpu']['instance']}")
    for g in result["gpu"]:
        typer.echo(f"GPU {g['instance']}: ${g['usd_per_1k']:.6f} per 1,000 ({g['status']})")
    typer.echo(f"wrote {done.json_path} and {done.markdown_path}")
