"""`mlp release` commands: start, resume, wait, status, abort, weights, record, and the registry webhook.

Exit codes of `start`/`resume`/`wait`: 0 promoted, 1 rolled back (or the gate failed: nothing deployed),
2 refused, interrupted or timed out (the message says what to do next).
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from core import contracts, env
from core.policy import policy
from infra.local.registry_auth import use_identity
from modules.k8s import webhook as cluster_receiver
from pipelines.release.state import Phase, ReleaseState, Trigger, who

if TYPE_CHECKING:
    from pipelines.release.deps import Deps
    from pipelines.release.service import WindowMode

app = typer.Typer(no_args_is_help=True)
webhook_app = typer.Typer(no_args_is_help=True, help="The MLflow registry webhook that starts releases.")
app.add_typer(webhook_app, name="webhook")

ModelOpt = Annotated[
    str | None, typer.Option("--model", help="Registered model (default: policy release.default_model)")
]
WindowOpt = Annotated[
    str | None,
    typer.Option(
        "--window",
        help="Analysis window: 'local' (policy local_window_seconds) or 'production' (window_seconds). "
        f"Default: env {env.RELEASE_WINDOW.name}, else local.",
    ),
]
TrafficOpt = Annotated[
    float,
    typer.Option("--drive-traffic", help="Send this many requests/s of validation texts through the gateway (demo)."),
]


def _model(model: str | None) -> str:
    return model or policy().release.default_model


def _finish(state: ReleaseState, traffic: dict[str, object] | None) -> None:
    typer.echo(f"\nrelease {state.release_id}: {state.phase.value} — {state.reason}")
    for a in state.analyses:
        if "phase" in a:  # answers: the shadow phase's ("shadow") or a traffic step's ("quality-<percent>")
            what = "shadow analysis" if a["phase"] == "shadow" else f"quality at {a['phase'].removeprefix('quality-')}%"
            typer.echo(
                f"  {what}: {a['verdict']}; {a['pairs']} paired answers, agreement {a['agreement']}, worst "
                f"flip rate {a['worst_flip_rate']}, label PSI {a['label_psi']}, confidence delta "
                f"{a['mean_confidence_delta']}"
            )
            continue
        typer.echo(
            f"  analysis at {a['percent']}%: {a['verdict']}; canary p95 {a.get('canary_p95_ms')} ms vs stable "
            f"{a.get('stable_p95_ms')} ms (ratio {a.get('latency_ratio')}), error rate {a.get('canary_error_rate')}, "
            f"canary requests {_whole(a.get('canary_requests'))}"
        )
    if traffic is not None:
        typer.echo(f"  traffic driven: {json.dumps(traffic)}")
    typer.echo(f"  log: {state.log_path}")
    if state.phase is Phase.SUCCEEDED:
        raise typer.Exit(0)
    if state.phase in (Phase.ROLLED_BACK, Phase.GATE_FAILED):
        raise typer.Exit(1)
    raise typer.Exit(2)


def _deps(name: str) -> Deps:
    """The release's dependencies for the model, or exit 2 naming why it is not released through the canary."""
    from pipelines.release.deps import local_deps

    try:
        return local_deps(name)
    except ValueError as exc:
        _fail(exc)


def _fail(exc: Exception) -> NoReturn:
    typer.secho(str(exc), fg="red", err=True)
    raise typer.Exit(2)


@app.callback()
def _registry_identity(ctx: typer.Context) -> None:
    """Releases set aliases and tags: the release bot (the webhook commands: the admin, see `_webhook_identity`)."""
    if ctx.invoked_subcommand != "webhook":
        use_identity(contracts.REGISTRY_RELEASE_BOT)


@webhook_app.callback()
def _webhook_identity() -> None:
    """MLflow lets only an admin create, read or test webhooks."""
    use_identity(contracts.REGISTRY_ADMIN)


@app.command()
def start(
    version: Annotated[str, typer.Option("--version", help="Version number or alias of the candidate")],
    model: ModelOpt = None,
    window: WindowOpt = None,
    drive_traffic: TrafficOpt = 0.0,
    trigger: Annotated[str, typer.Option(hidden=True)] = "manual",
    trigger_detail: Annotated[str, typer.Option(hidden=True, help="JSON: what triggered it")] = "{}",
) -> None:
    """Release a version: gate, canary beside stable, analysis, then promotion or automatic rollback."""
    from pipelines.release import service
    from pipelines.release.executor import ReleaseInterrupted
    from pipelines.release.traffic import gateway_traffic
    from services.registry.client import RegistryError

    name = _model(model)
    service.install_signal_handlers()
    try:
        state, traffic = service.start(
            model_name=name,
            version=version,
            trigger=Trigger(trigger, who(), json.loads(trigger_detail)),
            deps=_deps(name),
            p=policy().for_model(name),
            mode=_mode(window),
            traffic=gateway_traffic(drive_traffic, name),
        )
    except (service.ReleaseBusy, service.ReleaseRefused, ReleaseInterrupted, RegistryError) as exc:
        _fail(exc)
    _finish(state, traffic)


def _mode(window: str | None) -> WindowMode | None:
    if window is None:
        return None
    if window == "local":
        return "local"
    if window == "production":
        return "production"
    typer.secho(f"--window must be 'local' or 'production', not {window!r}", fg="red", err=True)
    raise typer.Exit(2)


@app.command()
def resume(model: ModelOpt = None, drive_traffic: TrafficOpt = 0.0) -> None:
    """Continue an interrupted release from its last completed step."""
    from pipelines.release import service
    from pipelines.release.executor import ReleaseInterrupted
    from pipelines.release.traffic import gateway_traffic

    name = _model(model)
    service.install_signal_handlers()
    try:
        state, traffic = service.resume(
            model_name=name,
            deps=_deps(name),
            p=policy().for_model(name),
            actor=who(),
            traffic=gateway_traffic(drive_traffic, name),
        )
    except (service.ReleaseBusy, service.ReleaseRefused, ReleaseInterrupted) as exc:
        _fail(exc)
    _finish(state, traffic)


@app.command()
def wait(
    model: ModelOpt = None,
    version: Annotated[int | None, typer.Option("--version", help="Only a release of this version number")] = None,
    since: Annotated[
        str | None, typer.Option(help="Only a release started at or after this ISO 8601 time (e.g. the alias's)")
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the release to start and end")] = 1200,
    drive_traffic: TrafficOpt = 0.0,
) -> None:
    """Follow a release another process runs (e.g. started by the webhook) to its end, showing its progress."""
    from pipelines.release.store import StateStore
    from pipelines.release.traffic import gateway_traffic
    from pipelines.release.watch import WaitError, Wanted
    from pipelines.release.watch import wait as follow

    name = _model(model)
    wanted = Wanted(version, _when(since) if since else None)
    try:
        state, traffic = follow(StateStore(name), wanted, timeout, traffic=gateway_traffic(drive_traffic, name))
    except WaitError as exc:
        _fail(exc)
    _finish(state, traffic)


def _when(text: str) -> datetime:
    try:
        when = datetime.fromisoformat(text)
    except ValueError as exc:
        raise typer.BadParameter(f"--since {text!r} is not an ISO 8601 time") from exc
    return when if when.tzinfo else when.replace(tzinfo=UTC)


@app.command()
def status(model: ModelOpt = None, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The current (or last) release: step, weights, decisions, and who runs it."""
    from pipelines.release import service

    name = _model(model)
    current = service.status(name)
    state = current.state
    if state is None:
        typer.echo(f"no release of {name} yet")
        return
    if as_json:
        typer.echo(json.dumps({**state.to_json(), "running": current.running, "owner": current.owner}, indent=2))
        return
    where = (
        f"running (pid {current.owner.get('pid')})"
        if current.running
        else ("INTERRUPTED: `mlp release resume` or `mlp release abort`" if current.interrupted else "finished")
    )
    typer.echo(f"release {state.release_id}: {name} v{state.version} vs stable v{state.stable_version} — {where}")
    typer.echo(f"  step: {state.phase.value} (canary step {state.step_index}: {state.steps})")
    typer.echo(f"  weights of the last completed step: {state.safe_weights}")
    typer.echo(f"  started by: {state.trigger.kind} {state.trigger.actor} at {state.created_at}")
    if state.reason:
        typer.echo(f"  reason: {state.reason}")
    for a in state.analyses:
        typer.echo(f"  analysis: {json.dumps(a)}")
    typer.echo(f"  log: {state.log_path}")


@app.command()
def abort(
    model: ModelOpt = None,
    reason: Annotated[str, typer.Option(help="Why (recorded on the version)")] = "aborted by operator",
) -> None:
    """Roll the current release back: canary weight 0, canary stopped, champion unchanged."""
    from pipelines.release import service
    from pipelines.release.executor import ReleaseInterrupted

    name = _model(model)
    try:
        state = service.abort(model_name=name, deps=_deps(name), p=policy().for_model(name), actor=who(), reason=reason)
    except (service.ReleaseBusy, service.ReleaseRefused, ReleaseInterrupted) as exc:
        _fail(exc)
    typer.echo(f"release {state.release_id}: {state.phase.value} — {state.reason}")
    raise typer.Exit(0 if state.phase is Phase.ROLLED_BACK else 1)


@app.command()
def weights(
    split: Annotated[list[str] | None, typer.Argument(help="VERSION=PERCENT pairs summing to 100; none: show")] = None,
    model: ModelOpt = None,
) -> None:
    """Show or set the gateway's traffic split of a model by hand (e.g. `mlp release weights 3=100`)."""
    from infra.local.generators import GeneratorError
    from pipelines.release.weights import parse_weights

    serving = _deps(_model(model)).serving
    if split:
        try:
            serving.set_weights(parse_weights(split))
        except (ValueError, GeneratorError) as exc:  # the parse, or the gateway refusing the split
            _fail(exc)
    typer.echo(json.dumps(serving.current_weights()))


@webhook_app.command("register")
def webhook_register(
    url: Annotated[
        str | None,
        typer.Option(
            help=f"Receiver URL (default: the local one). The cluster's: {cluster_receiver.url()}, with the "
            f"secret in {env.WEBHOOK_SECRET.name} (the value of the receiver's Secret)"
        ),
    ] = None,
) -> None:
    """Create (or update) the MLflow webhook that calls the receiver on alias changes. Idempotent."""
    from infra.local.webhook import register

    hook = register(url, secret=env.WEBHOOK_SECRET.get() or None)
    typer.echo(f"webhook {hook.name} ({hook.webhook_id}) -> {hook.url}, events {[str(e) for e in hook.events]}")


@webhook_app.command("test")
def webhook_test() -> None:
    """Ask MLflow to send a test delivery to the receiver (checks URL, network and signature)."""
    from infra.local.webhook import send_test

    result = send_test()
    typer.echo(json.dumps(result))
    if not result.get("success"):
        sys.exit(1)


@app.command()
def record(
    version: Annotated[int, typer.Option("--version")],
    status: Annotated[str, typer.Option(help="promoted | rolled_back | gate_failed")],
    reason: Annotated[str, typer.Option()],
    model: ModelOpt = None,
    move_champion: Annotated[bool, typer.Option(help="Point the champion alias at the version")] = False,
) -> None:
    """Record a release decision taken elsewhere (the cluster's Argo Rollouts run) on the model version."""
    from pipelines.release import service
    from pipelines.release.deps import MlflowRegistry

    name = _model(model)
    try:
        service.record_decision(
            registry=MlflowRegistry(name),
            version=version,
            outcome=status,
            reason=reason,
            champion_alias=policy().release.champion_alias if move_champion else None,
        )
    except service.ReleaseRefused as exc:
        _fail(exc)
    typer.echo(f"{name} v{version}: release.status={status}")


def _whole(value: object) -> str:
    return f"{value:.0f}" if isinstance(value, int | float) else str(value)
