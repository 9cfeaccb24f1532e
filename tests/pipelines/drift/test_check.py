"""`check_version`: the one drift check that `mlp drift check`, the drift demo and the scheduled job run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from pipelines.drift import check
from pipelines.drift.logs import Window
from pipelines.drift.push import PushError


class EmptyBucket:
    """An S3 client whose inference-log bucket holds nothing."""

    def get_paginator(self, _name: str) -> Any:
        class Paginator:
            def paginate(self, **_kw: Any) -> list[dict[str, Any]]:
                return [{"Contents": []}]

        return Paginator()


def window() -> Window:
    end = datetime.now(UTC)
    return Window(end - timedelta(hours=1), end)


def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **kw: Any) -> tuple[int, list[str], list[str]]:
    said: list[str] = []
    warned: list[str] = []
    code = check.check_version(
        "4",
        window(),
        s3=EmptyBucket,
        workspace=check.Workspace.under(tmp_path),
        model_dir=tmp_path,
        say=said.append,
        warn=warned.append,
        **kw,
    )
    return code, said, warned


def test_too_few_logged_inferences_is_insufficient_and_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, said, warned = run(tmp_path, monkeypatch, push=False)
    assert code == check.EXIT_INSUFFICIENT and not warned
    assert any(line.startswith("INSUFFICIENT: only 0 logged inferences") for line in said)
    assert (tmp_path / "reports" / "latest.json").exists()


def test_the_verdict_is_pushed_and_a_push_failure_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pushed: list[tuple[Any, str]] = []
    monkeypatch.setattr(check, "push_result", lambda result, url: pushed.append((result, url)))
    code, said, _ = run(tmp_path, monkeypatch, pushgateway="http://pushgateway.test")
    assert code == check.EXIT_INSUFFICIENT
    assert pushed[0][1] == "http://pushgateway.test" and pushed[0][0].status == "insufficient"
    assert said[-1].startswith("pushed to http://pushgateway.test")

    def refuse(_result: Any, url: str) -> None:
        raise PushError(f"could not push to {url}")

    monkeypatch.setattr(check, "push_result", refuse)
    code, _, warned = run(tmp_path, monkeypatch, pushgateway="http://pushgateway.test")
    assert code == check.EXIT_ERROR and warned == ["could not push to http://pushgateway.test"]


def test_a_registry_error_is_named_with_the_error_code(monkeypatch: pytest.MonkeyPatch) -> None:
    def unreachable(_version: str, _model_dir: Path | None, _models: Path, _name: str) -> tuple[int, Path]:
        raise RuntimeError("MLflow server at http://127.0.0.1:5000 is not answering")

    monkeypatch.setattr(check, "resolve_model", unreachable)
    warned: list[str] = []
    code = check.check_version(
        "champion",
        window(),
        s3=EmptyBucket,
        workspace=check.Workspace.under(Path("/nonexistent")),
        push=False,
        say=lambda _m: None,
        warn=warned.append,
    )
    assert code == check.EXIT_ERROR
    assert warned == ["drift check failed: MLflow server at http://127.0.0.1:5000 is not answering"]


def test_the_cli_and_the_demo_run_this_check(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from pipelines.commands.drift import app
    from pipelines.drift import demo

    assert demo.check_version is check.check_version  # no second implementation in the demo
    calls: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr(check, "check_version", lambda version, _w, **kw: calls.append((version, kw)) or 3)
    result = CliRunner().invoke(app, ["check", "--version", "4", "--model-dir", str(tmp_path), "--no-push"])
    assert result.exit_code == 3, result.output
    assert calls[0][0] == "4" and calls[0][1]["model_dir"] == tmp_path and calls[0][1]["push"] is False
    refused = CliRunner().invoke(app, ["check", "--version", "champion", "--model-dir", str(tmp_path)])
    assert refused.exit_code == 2 and "must be the number" in refused.output
