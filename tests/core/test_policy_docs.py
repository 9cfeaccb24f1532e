"""docs/policy.md: generated from the schema and policy.yaml, current, and the generator writes what it should."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field
from typer.testing import CliRunner

from core.policy import Policy
from core.policy_docs import DOCS_PATH, HEADER, policy_markdown, render
from pipelines.commands import policy_cmd
from tests.core.test_policy_values_written_once import fields


def test_docs_are_current() -> None:
    assert DOCS_PATH.read_text() == policy_markdown(), (
        "docs/policy.md is stale: run `mlp policy docs --write` and commit it"
    )


def test_schema_file_is_current() -> None:
    """Byte for byte as `mlp policy schema --write` writes it (test_policy_config compares the parsed JSON)."""
    assert policy_cmd.SCHEMA_PATH.read_text() == policy_cmd.schema_text(), (
        "policy.schema.json is stale: run `mlp policy schema --write` and commit it"
    )


def test_every_field_of_the_policy_has_a_row() -> None:
    text = DOCS_PATH.read_text()
    for path, _ in fields(Policy):
        # A section is a heading; a list's or map's entries are documented once, under `name[]` or `name.<name>`.
        parent, _, leaf = path.rpartition(".")
        candidates = [f"## `{path}`", f"| `{path}` |", f"| `{parent}[].{leaf}` |", f"| `{parent}.<name>.{leaf}` |"]
        assert any(c in text for c in candidates), f"docs/policy.md has no row for {path}"


def test_cli_prints_the_docs() -> None:
    result = CliRunner().invoke(policy_cmd.app, ["docs"])
    assert result.exit_code == 0, result.output
    assert result.output == policy_markdown()


# ---------------------------------------------------------------- the generator, on a small fixed model


class Limit(BaseModel):
    """A client of the service."""

    name: str = Field(pattern=r"^[a-z]+$", description="Who calls")
    rate: float = Field(gt=0, description="Requests per second")


class Section(BaseModel):
    """What the section holds.
    Wrapped over two lines."""

    port: int = Field(ge=1024, le=65535, description="Where it listens")
    mode: Literal["fast", "safe"] = Field(description="How it runs (fast | safe)")
    steps: list[Annotated[int, Field(ge=1, le=100)]] = Field(description="Traffic steps")
    note: str | None = Field(description="A note, or null")
    limits: list[Limit] = Field(description="Clients")
    prices: dict[str, float] = Field(description="Unit prices")


class Top(BaseModel):
    section: Section = Field(description="The section")


VALUES = {
    "section": {
        "port": 8080,
        "mode": "safe",
        "steps": [10, 100],
        "note": None,
        "limits": [{"name": "demo", "rate": 2.5}, {"name": "load", "rate": 100}],
        "prices": {"cpu_hour": 0.1, "gb_month": 0.02},
    }
}

EXPECTED = """
## `section`

What the section holds. Wrapped over two lines.

| Field | Type | Bounds | Value | Meaning |
|---|---|---|---|---|
| `section.port` | integer | ≥ 1024, ≤ 65535 | `8080` | Where it listens |
| `section.mode` | string | one of `fast`, `safe` | `safe` | How it runs (fast \\| safe) |
| `section.steps` | list of integer | each ≥ 1, ≤ 100 | `[10, 100]` | Traffic steps |
| `section.note` | string or null |  | `null` | A note, or null |
| `section.limits` | list of Limit |  | 2 entries, see [`section.limits[]`](#sectionlimits) | Clients |
| `section.prices` | map of string to number |  | `cpu_hour`: `0.1`<br>`gb_month`: `0.02` | Unit prices |

### `section.limits[]`

A client of the service.

| Field | Type | Bounds | Value | Meaning |
|---|---|---|---|---|
| `section.limits[].name` | string | pattern `^[a-z]+$` | `[0]`: `demo`<br>`[1]`: `load` | Who calls |
| `section.limits[].rate` | number | > 0 | `[0]`: `2.5`<br>`[1]`: `100` | Requests per second |
"""


def test_generator_writes_one_table_per_section_with_type_bounds_value_and_meaning() -> None:
    text = render(Top.model_json_schema(), VALUES)
    assert text.startswith(HEADER)
    assert "mlp policy docs --write" in text.splitlines()[0]
    assert text[len(HEADER) :] == EXPECTED
