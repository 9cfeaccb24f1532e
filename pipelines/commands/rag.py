"""`mlp rag`: a RAG version from corpus to answers (docs/rag.md).

mlp rag register-embedder          # the MiniLM encoder as a version of the catalogue's embed model
mlp rag ingest                     # corpus -> chunks -> embeddings from the served embedder -> build/rag/<model>
mlp rag gate                       # recall@k, MRR, groundedness, latency on the labelled questions
mlp rag register                   # the gated folder as a signed version with its pins and lineage
mlp rag serve <version>            # what it pins, then its server, routed at /v1/models/<model>/rag
mlp rag ask "question"             # through the gateway, with citations
"""

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

from core import contracts, endpoints
from core.policy import REPO_ROOT, policy
from infra.local.paths import build_dir
from infra.local.registry_auth import use_identity
from services.registry.client import RegistryError

app = typer.Typer(no_args_is_help=True)
console = Console(stderr=True)


def _progress(message: str) -> None:
    console.print(f"  [dim]{time.strftime('%H:%M:%S')}[/dim] {message}")


def _fail(message: str, code: int = 1) -> typer.Exit:
    console.print(f"[red]{message}[/red]")
    return typer.Exit(code)


def _default_model() -> str:
    rags = [m.name for m in policy().models if m.task == "rag"]
    if not rags:
        raise _fail("the catalogue (policy.yaml models) has no rag model", 2)
    return rags[0]


def rag_dir(model: str) -> Path:
    return build_dir() / "rag" / model


def _latest(model: str) -> int:
    from services.registry.client import list_versions

    versions = [int(v.version) for v in list_versions(model) if v.status == "READY"]
    if not versions:
        raise RegistryError(f"{model} has no registered version yet")
    return max(versions)


@app.command("register-embedder")
def register_embedder(
    variant: str = typer.Option("fp32", help="Packaged classifier folder under build/models whose encoder embeds"),
    as_json: bool = typer.Option(False, "--json", help="Print the result as one JSON object on stdout"),
) -> None:
    """Register the packaged encoder as a version of the rag section's embed model (signed; not twice)."""
    from pipelines.registry.register import register

    use_identity(contracts.REGISTRY_RELEASE_BOT)
    name = policy().rag.embedder_model
    try:
        with contextlib.redirect_stdout(sys.stderr):
            reg = register(build_dir() / "models" / variant, progress=_progress, name=name)
    except (RegistryError, OSError, ValueError) as exc:
        raise _fail(f"{exc}\nPackage it first: `mlp model package --variant {variant}`") from exc
    if as_json:
        print(json.dumps(asdict(reg)))
    console.print(f"[green]{variant} {'is' if reg.reused else 'registered as'} {reg.name} v{reg.version}[/green]")


@app.command("serve-embedder")
def serve_embedder(version: str = typer.Argument("latest", help="A registered version, an alias, or `latest`")) -> None:
    """Serve a version of the embed model (needed by `ingest`), routed at /v1/models/<embedder>/embed."""
    from infra.local import generators, serving
    from services.registry.client import resolve_version

    use_identity(contracts.REGISTRY_READER)
    name = policy().rag.embedder_model
    try:
        number = _latest(name) if version == "latest" else resolve_version(version, name)
        server = serving.start_catalogue_server(name, number)
    except (RegistryError, generators.GeneratorError, ValueError) as exc:
        raise _fail(str(exc)) from exc
    typer.echo(f"{name} v{server.version} ready; routed at {endpoints.gateway_url()}{server.route}")


@app.command()
def ingest(
    model: str | None = typer.Option(None, help="Catalogue rag model (default: the first)"),
    generator_version: str = typer.Option("latest", help="Generator version to pin: a number, an alias or latest"),
    key: str = typer.Option("loadtest", help="API key name the embedding requests use (policy gateway.api_keys)"),
) -> None:
    """Chunk the corpus, embed it with the served embedder (through the gateway), write build/rag/<model>."""
    import httpx

    from infra.local import tls
    from infra.local.secrets import api_key
    from pipelines.rag.ingest import GatewayEmbedder, IngestError
    from pipelines.rag.ingest import ingest as run_ingest
    from services.registry.client import resolve_version

    use_identity(contracts.REGISTRY_READER)
    p = policy()
    name = model or _default_model()
    gen = p.for_model(name).rag.generator_model
    try:
        pinned = _latest(gen) if generator_version == "latest" else resolve_version(generator_version, gen)
        headers = {contracts.API_KEY_HEADER: api_key(key)}
        with httpx.Client(
            base_url=endpoints.gateway_url(), headers=headers, timeout=60, verify=tls.client_context()
        ) as client:
            embedder = GatewayEmbedder(client, p.for_model(name).rag.embedder_model)
            config = run_ingest(REPO_ROOT, p, name, rag_dir(name), embedder, pinned, _progress)
    except (IngestError, RegistryError, FileNotFoundError, ValueError) as exc:
        raise _fail(str(exc)) from exc
    console.print(
        f"[green]{config.chunks} chunks from {config.corpus_files} files (corpus {config.corpus_sha256[:12]}) -> "
        f"{rag_dir(name)}; pins {config.embedder.model} v{config.embedder.version}, "
        f"{config.generator.model} v{config.generator.version}[/green]"
    )


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


@app.command()
def gate(
    model: str | None = typer.Option(None, help="Catalogue rag model (default: the first)"),
    path: Path | None = typer.Option(None, help="Built folder (default build/rag/<model>)"),
) -> None:
    """Judge a built RAG version: recall@k and MRR on the labelled questions, groundedness of generated answers,
    latency. Serves the embedder and generator versions it pins first. Exit 1 if a criterion fails."""
    from infra.local.generators import GeneratorError
    from pipelines.rag.local import gate as run_gate

    use_identity(contracts.REGISTRY_READER)
    name = model or _default_model()
    folder = path or rag_dir(name)
    try:
        report = run_gate(policy(), folder, build_dir() / "reports", progress=_progress)
    except (RegistryError, GeneratorError, ValueError, OSError) as exc:
        raise _fail(str(exc), 2) from exc
    table = Table("criterion", "measured", "threshold", "detail", "result", title=f"gate: {name}")
    for c in report.criteria:
        table.add_row(c.name, _fmt(c.candidate), c.threshold, c.detail, "pass" if c.passed else "[red]FAIL[/red]")
    Console(width=140).print(table)
    m = report.measures
    console.print(
        f"key facts in the answers: {m.key_fact_recall:.2f}; retrieval misses: {', '.join(m.misses) or 'none'}"
    )
    for reason in m.fallback_reasons:
        console.print(f"  fell back: {reason}")
    if not report.passed:
        raise _fail(f"Gate failed: {len(report.failures())} criterion(s).")
    console.print("[green]Gate passed.[/green]")


@app.command()
def register(
    model: str | None = typer.Option(None, help="Catalogue rag model (default: the first)"),
    path: Path | None = typer.Option(None, help="Built folder (default build/rag/<model>)"),
    as_json: bool = typer.Option(False, "--json", help="Print the result as one JSON object on stdout"),
) -> None:
    """Register a built RAG version that passed its gate: signed, tagged with its pins and lineage, all or nothing."""
    from pipelines.rag.local import gate_report_name
    from pipelines.registry.register_rag import register_rag

    use_identity(contracts.REGISTRY_RELEASE_BOT)
    name = model or _default_model()
    try:
        with contextlib.redirect_stdout(sys.stderr):
            reg = register_rag(
                path or rag_dir(name), name, build_dir() / "reports" / gate_report_name(name), progress=_progress
            )
    except (RegistryError, OSError, ValueError) as exc:
        raise _fail(str(exc)) from exc
    if as_json:
        print(json.dumps(asdict(reg)))
    console.print(f"[green]{'already' if reg.reused else 'registered as'} {reg.name} v{reg.version}[/green]")


@app.command()
def serve(
    version: str = typer.Argument(..., help="Registered RAG version: a number, an alias or `latest`"),
    model: str | None = typer.Option(None, help="Catalogue rag model (default: the first)"),
) -> None:
    """Serve a RAG version: the embedder and generator versions it pins, then its server (routed once ready)."""
    from infra.local.generators import GeneratorError
    from pipelines.rag.local import serve as run_serve
    from services.registry.client import resolve_version

    use_identity(contracts.REGISTRY_READER)
    name = model or _default_model()
    try:
        number = _latest(name) if version == "latest" else resolve_version(version, name)
        server = run_serve(policy(), name, number, _progress)
    except (RegistryError, GeneratorError, ValueError) as exc:
        raise _fail(str(exc)) from exc
    typer.echo(f"{name} v{server.version} ready; routed at {endpoints.gateway_url()}{server.route}")


@app.command()
def ask(
    question: str = typer.Argument(..., help="What to ask"),
    model: str | None = typer.Option(None, help="Catalogue rag model (default: the first)"),
    no_generate: bool = typer.Option(False, "--no-generate", help="Retrieve and cite only"),
    key: str = typer.Option("demo", help="API key name (policy gateway.api_keys)"),
    as_json: bool = typer.Option(False, "--json", help="Print the whole answer as JSON on stdout"),
) -> None:
    """Ask through the gateway; print the answer, its citations and each step's time."""
    import httpx

    from infra.local import tls
    from infra.local.secrets import api_key

    name = model or _default_model()
    url = f"{endpoints.gateway_url()}{contracts.model_route(name, 'rag')}"
    try:
        resp = httpx.post(
            url,
            json={"question": question, "generate": not no_generate},
            headers={contracts.API_KEY_HEADER: api_key(key)},
            timeout=60,
            verify=tls.client_context(),
        )
    except httpx.HTTPError as exc:
        raise _fail(f"the gateway at {url} did not answer ({exc}); run `mlp env up`") from exc
    if resp.status_code >= 400:
        hint = " (is it served? `mlp rag serve <version>`)" if resp.status_code == 404 else ""
        raise _fail(f"HTTP {resp.status_code} from {url}: {resp.text.strip()[:500]}{hint}")
    out = resp.json()
    if as_json:
        print(json.dumps(out))
        return
    typer.echo(f"Q: {question}")
    typer.echo(f"A ({out['mode']}): {out['answer'] or out['fallback_reason']}")
    for c in out["citations"]:
        typer.echo(f"  [{c['rank']}] {c['source']} - {c['section']} (score {c['score']:.2f})")
    t = out["timings_ms"]
    typer.echo("  " + ", ".join(f"{k} {v:.0f} ms" for k, v in t.items()) + f"; {name} v{out['model_version']}")
