"""`mlp drift` commands: `check` (scheduled: hourly job / CronJob) and `demo` (make demo).

Exit codes of `mlp drift check`: 0 no drift, 1 drift above `policy().drift.threshold`, 2 error (registry, S3 or
Pushgateway unreachable, bad arguments), 3 too few logged inferences in the window (`drift.min_samples`).
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from core import contracts, env
from core.policy import policy
from infra.local.registry_auth import use_identity
from pipelines.drift import check as drift_check
from pipelines.drift import local as drift_local
from pipelines.drift.logs import Window, parse_ts

app = typer.Typer(no_args_is_help=True)


@app.callback()
def _registry_identity() -> None:
    """Fetching and resolving versions only reads the registry."""
    use_identity(contracts.REGISTRY_READER)


def _window(hours: float | None, since: str | None, until: str | None) -> Window:
    try:
        end = parse_ts(until) if until else datetime.now(UTC)
        if since:
            return Window(parse_ts(since), end)
    except ValueError as exc:
        raise typer.BadParameter(f"not an ISO 8601 time: {exc}") from exc
    return Window.last_hours(hours if hours is not None else policy().drift.window_hours, end)


def _error(message: str) -> None:
    typer.secho(message, fg="red", err=True)


@app.command("check")
def check(
    version: Annotated[str, typer.Option(help="Version number or alias (default: the champion)")] = "",
    hours: Annotated[float | None, typer.Option(help="Window length (default policy drift.window_hours)")] = None,
    since: Annotated[str | None, typer.Option(help="Window start, ISO 8601 (overrides --hours)")] = None,
    until: Annotated[str | None, typer.Option(help="Window end, ISO 8601 (default now)")] = None,
    model_dir: Annotated[Path | None, typer.Option(help="Packaged model dir instead of the registry")] = None,
    bucket: Annotated[
        str, typer.Option(envvar=env.INFERENCE_LOG_BUCKET.name, help="Inference-log bucket")
    ] = contracts.INFERENCE_LOG_BUCKET,
    s3: Annotated[
        drift_local.S3Mode, typer.Option(envvar=env.S3.name, help="local S3 API, or AWS (IRSA/OIDC credentials)")
    ] = "local",
    push: Annotated[bool, typer.Option(help="Push the result to the Pushgateway")] = True,
    pushgateway: Annotated[
        str | None, typer.Option(envvar=env.PUSHGATEWAY_URL.name, help="Pushgateway URL (default local)")
    ] = None,
    out_dir: Annotated[Path | None, typer.Option(help="Report folder (default build/reports/drift)")] = None,
    reference_limit: Annotated[int | None, typer.Option(hidden=True, help="Sample the reference (tests)")] = None,
) -> None:
    """Compare the version's logged inferences over a window with its training-split reference."""
    ref = version or policy().release.champion_alias
    if model_dir is not None and not ref.isdigit():
        raise typer.BadParameter("with --model-dir, --version must be the number the logs are filed under")
    workspace = drift_local.workspace()
    if out_dir is not None:
        workspace = dataclasses.replace(workspace, reports=out_dir)
    code = drift_check.check_version(
        ref,
        _window(hours, since, until),
        s3=drift_local.s3_factory(s3),
        workspace=workspace,
        model_dir=model_dir,
        bucket=bucket,
        push=push,
        pushgateway=pushgateway,
        reference_limit=reference_limit,
        say=typer.echo,
        warn=_error,
    )
    raise typer.Exit(code)


@app.command("demo")
def demo(
    version: Annotated[str, typer.Option(help="Version to drive (default: the gateway's stable version)")] = "",
    samples: Annotated[int, typer.Option(help="Texts per traffic phase")] = 300,
    follow_loop: Annotated[
        bool, typer.Option(help="Then follow what the alert starts: retraining, gate, canary; exit 0 if promoted")
    ] = False,
    drive_traffic: Annotated[float, typer.Option(help="Requests/s sent while the retrained canary serves")] = 25.0,
    timeout: Annotated[float, typer.Option(help="Seconds for the whole loop after the alert fires")] = 1500,
) -> None:
    """Validation traffic (no alert), then shifted news headlines (alert), through the gateway."""
    from infra.local.paths import build_dir
    from pipelines.drift import demo as drift_demo

    loop = None
    if follow_loop:
        report = build_dir() / "reports" / "drift-loop.json"
        loop = drift_demo.LoopOptions(timeout_seconds=timeout, traffic_rps=drive_traffic, report_path=report)
    raise typer.Exit(drift_demo.run(version or None, samples, loop))
