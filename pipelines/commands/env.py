"""`mlp env`: bring the local environment up, down, and report its health (infra/local/stack.py)."""

from __future__ import annotations

import time

import typer
from rich.console import Console
from rich.table import Table

from core import endpoints
from infra.local.paths import logs_dir, state_dir
from infra.local.supervisor import EnvironmentError_, SupervisorError, is_running, shutdown_supervisord

app = typer.Typer(no_args_is_help=True)
console = Console(stderr=True)


@app.command()
def up() -> None:
    """Start every local server (idempotent: running servers are left alone)."""
    from infra.local.stack import up_steps

    steps = up_steps()
    started = time.monotonic()
    for i, step in enumerate(steps, 1):
        t0 = time.monotonic()
        console.print(f"[{i}/{len(steps)}] {step.name} ...", end=" ")
        try:
            step.run()
        except (EnvironmentError_, SupervisorError) as exc:
            console.print("[red]failed[/red]")
            console.print(f"[red]{exc}[/red]")
            console.print(f"Logs: {logs_dir()}. Fix the cause, then run `mlp env up` again (it resumes).")
            raise typer.Exit(1) from exc
        console.print(f"[green]ok[/green] ({time.monotonic() - t0:.1f}s)")
    console.print(f"Local environment up in {time.monotonic() - started:.1f}s. MLflow: {endpoints.mlflow_url()}")


@app.command()
def down() -> None:
    """Stop every local server; data stays in .state/ for the next `up`."""
    if not is_running():
        console.print("Nothing is running.")
        return
    shutdown_supervisord()
    console.print(f"Stopped. State kept in {state_dir()}")


@app.command()
def status() -> None:
    """Health of each server (answers on its port, not just a PID); exit 1 if any is unhealthy."""
    from infra.local.stack import health

    rows = health()
    table = Table("server", "process", "health", "detail")
    for row in rows:
        table.add_row(
            row.name, row.state, "[green]healthy[/green]" if row.healthy else "[red]unhealthy[/red]", row.detail
        )
    Console().print(table)
    if not all(row.healthy for row in rows):
        console.print(f"Some servers are unhealthy: `mlp env up` restarts what is missing; logs in {logs_dir()}")
        raise typer.Exit(1)


@app.command("rotate-registry-password")
def rotate_registry_password(
    user: str = typer.Argument(..., help="Registry user: mlp-admin, mlp-release-bot, mlp-model-server, mlp-reader"),
) -> None:
    """Give a registry user a new password: set in MLflow first (as the admin), then stored in the secret store;
    the supervised programs that use it are restarted (runbooks/registry-credential-rotation.md)."""
    from core import contracts
    from infra.local import model_servers, registry_auth
    from infra.local.supervisor import ctl, wait_healthy

    if user not in contracts.REGISTRY_USERS:
        raise typer.BadParameter(f"unknown registry user {user!r}; choose from {', '.join(contracts.REGISTRY_USERS)}")
    try:
        registry_auth.rotate(user)
    except registry_auth.RegistryAuthError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    restarted = []
    if user == contracts.REGISTRY_MODEL_SERVER:  # the only supervised programs holding a registry password
        for program in model_servers.model_server_programs():
            ctl("restart", program.name, check=False)
            wait_healthy(program, timeout=180)
            restarted.append(program.name)
    console.print(
        f"{user}: new password set in MLflow and stored as secret `{contracts.REGISTRY_USERS[user]}`"
        + (f"; restarted {', '.join(restarted)}" if restarted else "; no supervised program holds it")
    )
