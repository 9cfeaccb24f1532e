"""`mlp drift` commands: `check` (scheduled: hourly job / CronJob) and `demo` (make demo).

Exit codes of `mlp drift check`: 0 no drift, 1 drift above `policy().drift.threshold`, 2 error (registry, S3 or
Pushgateway unreachable, bad arguments), 3 too few logged inferences in the window (`drift.min_samples`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from core import contracts, env
from core.policy import policy
from infra.local import endpoints
from infra.local.paths import build_dir
from pipelines.drift import check as drift_check
from pipelines.drift.logs import Window, parse_ts

app = typer.Typer(no_args_is_help=True)
# Set by the scheduled job in the cluster (CronJob) and in GitHub Actions; locally the defaults apply.
S3Mode = Literal["local", "aws"]


def reports_dir() -> Path:
    return build_dir() / "reports" / "drift"


def _window(hours: float | None, since: str | None, until: str | None) -> Window:
    try:
        end = parse_ts(until) if until else datetime.now(UTC)
        if since:
            return Window(parse_ts(since), end)
    except ValueError as exc:
        raise typer.BadParameter(f"not an ISO 8601 time: {exc}") from exc
    return Window.last_hours(hours if hours is not None else policy().drift.window_hours, end)


def s3_client(mode: S3Mode) -> Any:
    """The local S3 API with the local keys, or AWS S3 with the default credential chain (IRSA, OIDC)."""
    if mode == "aws":
        import boto3

        return boto3.client("s3")
    from infra.local.stack import s3_client as local_client

    return local_client()


def resolve_model(version: str, model_dir: Path | None) -> tuple[int, Path]:
    """(version number, model directory): from the registry, or a local packaged model for a given number."""
    if model_dir is not None:
        if not version.isdigit():
            raise typer.BadParameter("with --model-dir, --version must be the number the logs are filed under")
        return int(version), model_dir
    from pipelines.registry.client import download_version, resolve_version

    number = resolve_version(version)
    return number, download_version(number)


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
        S3Mode, typer.Option(envvar=env.S3.name, help="local S3 API, or AWS (IRSA/OIDC credentials)")
    ] = "local",
    push: Annotated[bool, typer.Option(help="Push the result to the Pushgateway")] = True,
    pushgateway: Annotated[
        str | None, typer.Option(envvar=env.PUSHGATEWAY_URL.name, help="Pushgateway URL (default local)")
    ] = None,
    out_dir: Annotated[Path | None, typer.Option(help="Report folder (default build/reports/drift)")] = None,
    reference_limit: Annotated[int | None, typer.Option(hidden=True, help="Sample the reference (tests)")] = None,
) -> None:
    """Compare the version's logged inferences over a window with its training-split reference."""
    raise typer.Exit(
        run_and_print(
            version or policy().release.champion_alias,
            _window(hours, since, until),
            model_dir=model_dir,
            bucket=bucket,
            s3=s3,
            push=push,
            pushgateway=pushgateway,
            out_dir=out_dir,
            reference_limit=reference_limit,
        )
    )


def run_and_print(
    version: str,
    window: Window,
    *,
    model_dir: Path | None = None,
    bucket: str = contracts.INFERENCE_LOG_BUCKET,
    s3: S3Mode = "local",
    push: bool = True,
    pushgateway: str | None = None,
    out_dir: Path | None = None,
    reference_limit: int | None = None,
) -> int:
    """Run one check, print its verdict, push it; return the exit code."""
    from pipelines.drift.push import JOB, PushError, push_result

    try:
        number, directory = resolve_model(version, model_dir)
        request = drift_check.CheckRequest(
            model_name=policy().release.model_name,
            version=number,
            model_dir=directory,
            window=window,
            bucket=bucket,
            out_dir=out_dir or reports_dir(),
            reference_limit=reference_limit,
        )
        outcome = drift_check.run_check(request, s3_client(s3), progress=lambda m: typer.echo(m))
    except typer.BadParameter:
        raise
    except Exception as exc:  # registry, S3, model files: name it and stop with the error code
        typer.secho(f"drift check failed: {exc}", fg="red", err=True)
        return drift_check.EXIT_ERROR
    result = outcome.result
    for f in result.features:
        mark = "DRIFT" if f.drifted else "ok"
        typer.echo(f"  {f.name:<24} {f.method:<10} p={f.p_value:.4f}  {mark}")
    colour = {"ok": "green", "drift": "red", "insufficient": "yellow"}[result.status]
    typer.secho(f"{result.status.upper()}: {result.message}", fg=colour)
    typer.echo(f"report: {outcome.json_path}" + (f" and {outcome.html_path}" if outcome.html_path else ""))
    if push:
        url = pushgateway or endpoints.pushgateway_url()
        try:
            push_result(result, url)
        except PushError as exc:
            typer.secho(str(exc), fg="red", err=True)
            return drift_check.EXIT_ERROR
        typer.echo(f"pushed to {url} (job {JOB}, model_version={result.model_version})")
    return outcome.exit_code


@app.command("demo")
def demo(
    version: Annotated[str, typer.Option(help="Version to drive (default: the gateway's stable version)")] = "",
    samples: Annotated[int, typer.Option(help="Texts per traffic phase")] = 300,
) -> None:
    """Validation traffic (no alert), then shifted news headlines (alert), through the gateway."""
    from pipelines.drift import demo as drift_demo

    raise typer.Exit(drift_demo.run(version or None, samples))
