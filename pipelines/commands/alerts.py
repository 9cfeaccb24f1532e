"""`mlp alerts`: what is firing now (Alertmanager API v2) and the notifications sent (the receiver's log), each
with its runbook; `mlp alerts check` validates the rendered Alertmanager config with amtool."""

from __future__ import annotations

import sys
from typing import Any

import typer

from infra.local import alertmanager, webhook
from services.webhook import actions
from services.webhook import alerts as notifications

app = typer.Typer(invoke_without_command=True)


def _model(labels: dict[str, Any]) -> str:
    if "model_name" not in labels:
        return labels.get("instance", "")
    return f"{labels['model_name']} v{labels.get('model_version', '?')}"


def active_lines(items: list[dict[str, Any]]) -> list[str]:
    lines = []
    for a in sorted(items, key=lambda a: (a["labels"].get("alertname", ""), a.get("startsAt", ""))):
        labels, notes, status = a["labels"], a.get("annotations", {}), a.get("status", {})
        state = status.get("state", "?")
        if status.get("inhibitedBy"):
            state += " (inhibited)"
        if status.get("silencedBy"):
            state += " (silenced)"
        lines.append(
            f"  {labels.get('alertname', '?'):<28} {labels.get('severity', '-'):<7} {_model(labels):<28} "
            f"{state:<22} since {a.get('startsAt', '?')[:19]}  {notes.get('runbook_url', '(no runbook)')}"
        )
    return lines


def notification_lines(records: list[dict[str, Any]]) -> list[str]:
    lines = []
    for r in records:
        lines.append(f"  {r.get('ts', '?')}  {r.get('receiver', '?')}  {r.get('status', '?')}")
        for a in r.get("alerts", []):
            lines.append(
                f"      {a.get('status', '?'):<9} {a.get('alertname', '?'):<28} {_model(a):<28} "
                f"{a.get('runbook_url', '(no runbook)')}"
            )
    return lines


@app.callback()
def show(
    ctx: typer.Context,
    recent: int = typer.Option(10, min=1, help="How many of the latest notifications to show"),
) -> None:
    """List active alerts and the latest notifications, with their runbook links."""
    if ctx.invoked_subcommand is not None:
        return
    failed = False
    try:
        active = alertmanager.alerts()
        typer.echo(f"Active alerts ({len(active)}), from Alertmanager:")
        typer.echo("\n".join(active_lines(active)) if active else "  none")
    except alertmanager.AlertmanagerUnavailable as exc:
        typer.secho(str(exc), fg="red", err=True)
        failed = True
    log = webhook.notifications_log()
    records = notifications.read(log, recent)
    typer.echo(f"\nLatest notifications ({len(records)}), from {log}:")
    typer.echo("\n".join(notification_lines(records)) if records else "  none delivered yet")
    if failed:
        sys.exit(1)


@app.command("check")
def check() -> None:
    """Render the local Alertmanager config and run `amtool check-config` on it (exit 1 on any error)."""
    path = alertmanager.write_config()
    result = alertmanager.check_config(path)
    typer.echo((result.stdout + result.stderr).strip())
    if result.returncode != 0:
        typer.secho("the Alertmanager config is invalid: fix core/alertmanager.py", fg="red", err=True)
        sys.exit(1)
    if alertmanager.reload_alertmanager():
        typer.echo("local Alertmanager reloaded")


@app.command("actions")
def actions_switch(
    what: str = typer.Argument("status", help="status, pause or resume"),
    reason: str = typer.Option("", help="Why (required to pause): shown to whoever looks next"),
) -> None:
    """Pause or resume what alerts start (drift -> retraining); notifications are logged either way."""
    from pipelines.release.state import who

    folder = webhook.state_dir()
    if what == "pause":
        if not reason.strip():
            raise typer.BadParameter("say why with --reason: the next person to look needs it")
        actions.pause(folder, f"{reason.strip()} ({who()})")
    elif what == "resume":
        actions.resume(folder)
    elif what != "status":
        raise typer.BadParameter(f"unknown {what!r}: choose status, pause or resume")
    why = actions.paused(folder)
    typer.echo(f"alert actions paused: {why}" if why else "alert actions run (drift starts a retraining)")
