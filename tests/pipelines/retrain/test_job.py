"""The retraining Job's entry point: its exit codes (0 registered, 3 refused, 1 failed, 2 bad arguments) and its
stdout, the retraining log the workflow reads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pipelines.retrain import job
from pipelines.retrain.breakers import Refusal, RetrainRefused
from pipelines.retrain.run import Workspace, record
from services.registry.client import RegistryError


def fake_retrain(outcome: Exception | None) -> Any:
    def retrain(parent: str, trigger: str, alias: str | None, progress: Any, space: Workspace, alert: Any) -> None:
        assert space.events.is_relative_to(space.builds.parent), "everything in the scratch folder"
        assert space.running_release() is None  # the workflow's concurrency group holds releases back
        record(space.events, "refused" if outcome else "registered", parent=parent, trigger=trigger, alias=alias)
        if outcome:
            raise outcome

    return retrain


@pytest.mark.parametrize(
    ("outcome", "code"),
    [
        (None, 0),
        (RetrainRefused(Refusal("cooldown", "the last one was 5 minutes ago")), job.EXIT_REFUSED),
        (RegistryError("MLflow refused the upload"), 1),
    ],
)
def test_exit_code_and_the_log_on_stdout(
    outcome: Exception | None, code: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.setattr(job, "retrain", fake_retrain(outcome))
    monkeypatch.setattr("services.registry.client.model_name", lambda: "m")
    argv = ["--from", "4", "--trigger", "drift", "--alert-fingerprint", "ab12", "--drift-score", "0.8"]
    assert job.main([*argv, "--candidate", "--scratch", str(tmp_path)]) == code
    out, err = capsys.readouterr()
    (line,) = [json.loads(ln) for ln in out.splitlines()]
    assert (line["parent"], line["trigger"], line["alias"]) == ("4", "drift", "candidate")
    if outcome is not None:
        assert str(outcome) in err


def test_an_alert_on_a_manual_retraining_is_refused_before_anything_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.setattr(job, "retrain", lambda *a: pytest.fail("must not run"))
    assert job.main(["--from", "4", "--alert-fingerprint", "ab12", "--scratch", str(tmp_path)]) == 2
    assert "use --trigger drift" in capsys.readouterr().err
