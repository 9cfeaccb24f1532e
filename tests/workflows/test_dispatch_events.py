"""The receiver's repository_dispatch events each start the workflow that handles them: a renamed event on one side
would leave promotions or drift alerts starting nothing in the cluster."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.promql import SERVING_NAMESPACE
from services.webhook.dispatch import DISPATCH_EVENT_TYPE, RETRAIN_EVENT_TYPE

WORKFLOWS = Path(__file__).resolve().parents[2] / ".github" / "workflows"


def triggers(name: str) -> dict[str, Any]:
    doc = yaml.safe_load((WORKFLOWS / name).read_text())
    return doc.get("on", doc.get(True))  # YAML 1.1 reads a bare `on` key as True


@pytest.mark.parametrize(
    ("event", "workflow"), [(DISPATCH_EVENT_TYPE, "model-release.yml"), (RETRAIN_EVENT_TYPE, "model-retrain.yml")]
)
def test_each_dispatch_event_starts_its_workflow(event: str, workflow: str) -> None:
    assert triggers(workflow)["repository_dispatch"]["types"] == [event]


def test_the_retraining_waits_for_the_release_and_the_release_for_it() -> None:
    """One concurrency group per model for both: no retraining while a release runs (the release_running breaker's
    cluster side), and the retrained version's release starts after the retraining ended."""
    release = yaml.safe_load((WORKFLOWS / "model-release.yml").read_text())["concurrency"]
    retrain = yaml.safe_load((WORKFLOWS / "model-retrain.yml").read_text())["concurrency"]
    assert release == retrain and release["cancel-in-progress"] is False


def test_the_retraining_renders_its_job_with_the_alert_and_options_the_command_has() -> None:
    """The workflow's `mlp render retrain-job` line passes the alert (the Job's lineage args: tests/modules/k8s/
    test_retrain.py) and only options the command defines."""
    import typer.main

    from pipelines.commands.render import app

    text = (WORKFLOWS / "model-retrain.yml").read_text().replace("\\\n", " ")
    (line,) = [ln for ln in text.splitlines() if ln.strip().startswith(".venv/bin/mlp render retrain-job")]
    command = typer.main.get_command(app).commands["retrain-job"]  # type: ignore[attr-defined]
    options = {opt for param in command.params for opt in param.opts}
    (alert,) = [ln for ln in text.splitlines() if ln.strip().startswith("alert=(--")]  # the dispatch's alert
    used = set(re.findall(r"(--[a-z-]+)", line + alert))
    assert {"--alert-fingerprint", "--drift-score", "--from", "--image", "--signing-kms-key"} <= used
    assert used <= options, f"not options of mlp render retrain-job: {sorted(used - options)}"


def test_the_names_the_retraining_workflow_uses_are_the_renderers() -> None:
    from modules.k8s import monitoring, render
    from modules.k8s.retrain import retrain_job
    from tests.modules.test_platform_checkov import RETRAIN_PROPS

    settings = yaml.safe_load((WORKFLOWS / "model-retrain.yml").read_text())["env"]
    assert settings["JOB_NAMESPACE"] == retrain_job(RETRAIN_PROPS)["metadata"]["namespace"]
    assert settings["NAMESPACE"] == SERVING_NAMESPACE
    # The model's own drift CronJob: the workflow formats the renderer's name with the dispatched model.
    assert f"format('{monitoring.drift_job_name('{0}')}', " in settings["DRIFT_CRONJOB"]
    assert settings["FIELD_MANAGER"] == render.FIELD_MANAGER
