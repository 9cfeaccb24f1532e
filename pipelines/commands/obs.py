"""`mlp obs` commands: Prometheus rules and Grafana dashboards."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import typer

from core import dashboards, rules
from infra.local import prometheus
from infra.local.paths import REPO_ROOT

app = typer.Typer(no_args_is_help=True)

DASHBOARD_DIR = REPO_ROOT / "docs" / "dashboards"
DASHBOARD_PNG = REPO_ROOT / "docs" / "img" / "dashboard.png"


@app.command("render-rules")
def render_rules(
    out: Path = typer.Option(None, help="Directory for the rule file (default: <state>/prometheus/rules)"),
) -> None:
    """Write the recording and alerting rules; reload the local Prometheus if it runs."""
    target = out or prometheus.rules_dir()
    path = rules.render(target)
    typer.echo(f"wrote {path} ({len(rules.alert_names())} alerts)")
    if out is None:
        if prometheus.reload_prometheus():
            typer.echo("local Prometheus reloaded")
        else:
            typer.echo("local Prometheus is not running: it loads the rules on `mlp env up`")


@app.command("check")
def check() -> None:
    """`promtool check rules` on the rendered rules (exit 1 on any error)."""
    path = rules.render(prometheus.rules_dir())
    result = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    typer.echo((result.stdout + result.stderr).strip())
    if result.returncode != 0:
        typer.secho("rules are invalid: fix core/rules.py", fg="red", err=True)
        sys.exit(1)


@app.command("render-dashboards")
def render_dashboards(out: Path = typer.Option(DASHBOARD_DIR, help="Directory for the dashboard JSON")) -> None:
    """Write each Grafana dashboard as provisionable JSON."""
    for path in dashboards.write(out):
        typer.echo(f"wrote {path}")


@app.command("render-dashboard")
def render_dashboard(
    out: Path = typer.Option(DASHBOARD_PNG, help="PNG to write"),
    minutes: int = typer.Option(30, min=1, help="Time range to draw"),
) -> None:
    """Draw the model-serving dashboard from the local Prometheus as a PNG (for the README)."""
    from pipelines.observability.snapshot import render_png  # matplotlib loads only for this command

    drawn = render_png(out, minutes=minutes, progress=lambda m: typer.echo(f"  {m}"))
    empty = [title for title, n in drawn.items() if n == 0]
    typer.echo(f"wrote {out} ({len(drawn) - len(empty)}/{len(drawn)} panels with data)")
    if empty:
        typer.echo(f"no data: {', '.join(empty)} (send traffic through the gateway, or cluster-only panels)")
