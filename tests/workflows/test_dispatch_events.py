"""The receiver's repository_dispatch events each start the workflow that handles them: a renamed event on one side
would leave promotions or drift alerts starting nothing in the cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

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


def test_the_retraining_passes_the_alert_as_lineage() -> None:
    text = (WORKFLOWS / "model-retrain.yml").read_text()
    for flag in ("--trigger drift", "--alert-fingerprint", "--drift-score", "--candidate"):
        assert flag in text, flag
