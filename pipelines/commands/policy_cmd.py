"""`mlp policy`: validate policy.yaml and export its JSON schema."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from core.policy import REPO_ROOT, json_schema, load_policy

app = typer.Typer(no_args_is_help=True)
SCHEMA_PATH = REPO_ROOT / "policy.schema.json"


@app.command()
def validate(path: Path = typer.Argument(None, help="Policy file (default: policy.yaml)")) -> None:
    """Validate the policy; exit 2 naming every bad field."""
    p = load_policy(path)
    typer.echo(f"policy OK: {len(p.gateway.api_keys)} API clients, canary steps {p.canary.steps}")


@app.command()
def schema(write: bool = typer.Option(False, help="Write policy.schema.json instead of printing")) -> None:
    """Print (or write) the JSON schema of the policy."""
    text = json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"
    if write:
        SCHEMA_PATH.write_text(text)
        typer.echo(f"wrote {SCHEMA_PATH}")
    else:
        typer.echo(text, nl=False)
