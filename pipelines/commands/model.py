"""`mlp model`: package (ONNX export, in its own venv), register, gate, list."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from core import env
from core.policy import REPO_ROOT
from infra.local.paths import build_dir
from pipelines.registry.client import RegistryError

app = typer.Typer(no_args_is_help=True)
console = Console(stderr=True)
VARIANTS = ("fp32", "int8", "weak", "heavy")
PACK_PYTHON = REPO_ROOT / ".venv-pack" / "bin" / "python"


def _progress(message: str) -> None:
    console.print(f"  [dim]{time.strftime('%H:%M:%S')}[/dim] {message}")


def artifact_dir(variant: str) -> Path:
    return build_dir() / "models" / variant


@app.command()
def package(
    variant: str = typer.Option("all", help=f"One of {', '.join(VARIANTS)} or 'all'"),
    force: bool = typer.Option(False, help="Rebuild even when the inputs are unchanged"),
) -> None:
    """Export the encoder to ONNX, attach the head, measure it (PyTorch runs only here, in .venv-pack)."""
    if variant != "all" and variant not in VARIANTS:
        raise typer.BadParameter(f"unknown variant {variant!r}; choose from {', '.join(VARIANTS)} or all")
    if not PACK_PYTHON.exists():
        console.print("[red]The packaging venv is missing.[/red] Run `make bootstrap` (installs PyTorch CPU).")
        raise typer.Exit(1)
    from core.policy import policy

    p = policy()
    args = ["--all"] if variant == "all" else ["--variant", variant]
    args += [
        "--max-seq-tokens",
        str(p.serving.max_seq_tokens),
        "--latency-requests",
        str(p.promotion.latency_requests),
        "--warmup",
        str(p.promotion.latency_warmup_requests),
    ]
    if force:
        args.append("--force")
    cmd = [str(PACK_PYTHON), "-m", "pipelines.packaging.build", *args]
    result = subprocess.run(cmd, cwd=REPO_ROOT, env={**os.environ, env.BUILD_DIR.name: str(build_dir())})
    if result.returncode != 0:
        raise typer.Exit(result.returncode)


@app.command()
def register(
    variant: str = typer.Option(..., help=f"Packaged variant: {', '.join(VARIANTS)}"),
    alias: str | None = typer.Option(None, help="Alias to point at the new version (e.g. champion)"),
    path: Path | None = typer.Option(None, help="Artifact directory (default build/models/<variant>)"),
) -> None:
    """Register a packaged variant as a new version: all or nothing."""
    from pipelines.registry.register import register as do_register

    console.print(f"Registering {variant} ...")
    try:
        reg = do_register(path or artifact_dir(variant), alias=alias, progress=_progress)
    except RegistryError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    verb = "already registered as" if reg.reused else "registered as"
    suffix = f" (alias {alias})" if alias else ""
    console.print(f"[green]{variant} {verb} {reg.name} v{reg.version}[/green]{suffix}; run {reg.run_id}")
    typer.echo(reg.version)


@app.command()
def gate(
    version: str = typer.Argument(..., help="Candidate version number or alias"),
    champion: str = typer.Option("champion", help="Alias of the version to compare against"),
) -> None:
    """Compare a candidate against the champion and the baseline; exit 1 if any criterion fails."""
    from pipelines.gate import run_gate

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


@app.command("list")
def list_versions() -> None:
    """Registered versions with aliases, variant and validation accuracy."""
    from pipelines.registry import client

    try:
        client.check_mlflow()
        versions = client.list_versions()
        aliases = client.mlflow_client().get_registered_model(client.model_name()).aliases if versions else {}
    except RegistryError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    by_version: dict[str, list[str]] = {}
    for alias, v in aliases.items():
        by_version.setdefault(str(v), []).append(alias)
    table = Table("version", "aliases", "variant", "val. accuracy", "gate", "release")
    for v in versions:
        table.add_row(
            v.version,
            ", ".join(sorted(by_version.get(v.version, []))),
            v.tags.get("variant", "?"),
            _fmt_tag(v.tags.get("validation_accuracy")),
            v.tags.get("gate.result", "-"),
            v.tags.get("release.status", "-"),
        )
    Console(width=140).print(table)


def _fmt_tag(value: str | None) -> str:
    try:
        return f"{float(value):.4f}" if value is not None else "?"
    except ValueError:
        return value or "?"


if __name__ == "__main__":
    sys.exit(app())
