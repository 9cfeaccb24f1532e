"""`mlp policy`: validate policy.yaml, export its JSON schema and write its reference (docs/policy.md)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from core.policy import REPO_ROOT, json_schema, load_policy
from core.policy_docs import DOCS_PATH, policy_markdown

app = typer.Typer(no_args_is_help=True)
SCHEMA_PATH = REPO_ROOT / "policy.schema.json"


def schema_text() -> str:
    """policy.schema.json as `mlp policy schema --write` writes it."""
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"


@app.command()
def validate(path: Path = typer.Argument(None, help="Policy file (default: policy.yaml)")) -> None:
    """Validate the policy; exit 2 naming every bad field."""
    p = load_policy(path)
    models = ", ".join(f"{m.name} ({m.task}, {m.criticality})" for m in p.models)
    typer.echo(f"policy OK: models {models}; {len(p.gateway.api_keys)} API clients, canary steps {p.canary.steps}")


@app.command()
def schema(write: bool = typer.Option(False, help="Write policy.schema.json instead of printing")) -> None:
    """Print (or write) the JSON schema of the policy."""
    text = schema_text()
    if write:
        SCHEMA_PATH.write_text(text)
        typer.echo(f"wrote {SCHEMA_PATH}")
    else:
        typer.echo(text, nl=False)


@app.command()
def docs(write: bool = typer.Option(False, help="Write docs/policy.md instead of printing")) -> None:
    """Print (or write) the policy reference: every field with its type, bounds, value and meaning."""
    text = policy_markdown()
    if write:
        DOCS_PATH.write_text(text)
        typer.echo(f"wrote {DOCS_PATH}")
    else:
        typer.echo(text, nl=False)


@app.command()
def models(path: Path = typer.Argument(None, help="Policy file (default: policy.yaml)")) -> None:
    """The model catalogue as each model sees it: route, criticality, and the objectives its overrides give it."""
    from core import contracts
    from core.cost import replica_usd_per_hour

    p = load_policy(path)
    for m in p.models:
        mp = p.for_model(m.name)
        default = " (default: also POST /classify)" if m.name == p.release.default_model else ""
        typer.echo(f"{m.name}: {m.task} on {m.runtime}, {m.criticality}{default}")
        typer.echo(f"  route        POST {contracts.model_route(m.name, m.task)}")
        typer.echo(f"  slo          p95 {mp.slo.latency_p95_ms:g} ms, p99 {mp.slo.latency_p99_ms:g} ms")
        typer.echo(f"  canary       steps {mp.canary.steps}, max p95 ratio {mp.canary.analysis.max_latency_ratio:g}")
        typer.echo(f"  drift        alert above {mp.drift.threshold:g} of features drifted")
        floor = mp.scaling.min_replicas if m.critical else 0
        typer.echo(
            f"  replicas     {floor}..{mp.scaling.max_replicas} of {mp.serving.cpu_request} CPU, "
            f"{mp.serving.memory_request} (${replica_usd_per_hour(mp):.4f}/h each on {mp.prices.cpu_instance})"
        )
        overridden = ", ".join(f"{section}.{key}" for section, values in m.overrides.items() for key in values)
        typer.echo(f"  overrides    {overridden or 'none'}")
