"""`mlp model register --json` and `mlp model alias set`: one JSON object on stdout, for scripts and the demo."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipelines.commands.model import app
from pipelines.registry import register as reg


def test_register_json_is_the_only_stdout(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def register(path: Path, alias: str | None, progress: object) -> reg.Registered:
        sys.stdout.write("🏃 View run package-int8 at: http://127.0.0.1:5000/#/...\n")  # what MLflow prints
        return reg.Registered("review-polarity-classifier", 5, "run123", "int8", False)

    monkeypatch.setattr(reg, "register", register)
    result = CliRunner().invoke(app, ["register", "--variant", "int8", "--path", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "name": "review-polarity-classifier",
        "version": 5,
        "run_id": "run123",
        "variant": "int8",
        "reused": False,
        "alias": None,
    }
    plain = CliRunner().invoke(app, ["register", "--variant", "int8", "--path", str(tmp_path)])
    assert plain.stdout.strip() == "5"  # without --json: the number, as before


def test_alias_set_json(monkeypatch: pytest.MonkeyPatch) -> None:
    done = reg.AliasSet("review-polarity-classifier", "candidate", 5, "2026-01-01T00:00:00+00:00")
    monkeypatch.setattr(
        reg, "point_alias", lambda alias, version: done if (alias, version) == ("candidate", "5") else None
    )
    result = CliRunner().invoke(app, ["alias", "set", "candidate", "5", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "name": "review-polarity-classifier",
        "alias": "candidate",
        "version": 5,
        "set_at": "2026-01-01T00:00:00+00:00",
    }
