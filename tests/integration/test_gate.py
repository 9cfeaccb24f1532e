"""The promotion gate on real registered versions: a good candidate passes, a really worse one fails."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines.gate import run_gate
from services.registry import client as registry

pytestmark = pytest.mark.integration
REFERENCE_ALIAS = "gate-reference"  # the tests' own champion, so releases moving `champion` cannot interfere


@pytest.fixture(scope="module")
def reference(registered_versions: dict[str, int]) -> int:
    registry.set_alias(REFERENCE_ALIAS, registered_versions["fp32"])
    return registered_versions["fp32"]


def test_good_candidate_passes_and_report_is_logged(registered_versions: dict[str, int], reference: int) -> None:
    report = run_gate(registered_versions["int8"], champion_alias=REFERENCE_ALIAS)
    assert report.passed, [c for c in report.failures()]
    assert report.champion_version == reference
    assert report.candidate_metrics["accuracy"] > report.baseline_metrics["accuracy"]
    saved = json.loads(Path(str(report.report_path)).read_text())
    assert saved["passed"] is True
    version = registry.get_version(registered_versions["int8"])
    assert version.tags["gate.result"] == "passed"
    logged = registry.mlflow_client().list_artifacts(version.run_id, "gate")
    assert any(a.path.endswith(f"gate-v{version.version}.json") for a in logged)


def test_really_worse_candidate_fails_on_measured_metrics(registered_versions: dict[str, int], reference: int) -> None:
    report = run_gate(registered_versions["weak"], champion_alias=REFERENCE_ALIAS)
    assert not report.passed
    failed = {c.name for c in report.failures()}
    assert any("regression vs champion" in name for name in failed)
    assert any("recall regression on class" in name for name in failed)
    assert report.candidate_metrics["accuracy"] < report.champion_metrics["accuracy"]  # type: ignore[index]
    assert registry.get_version(registered_versions["weak"]).tags["gate.result"] == "failed"


def test_gate_cli_exits_non_zero_on_failure(registered_versions: dict[str, int], reference: int) -> None:
    from tests.integration.conftest import mlp

    failed = mlp("model", "gate", str(registered_versions["weak"]), "--champion", REFERENCE_ALIAS, check=False)
    assert failed.returncode == 1
    assert "FAIL" in failed.stdout
    passed = mlp("model", "gate", str(registered_versions["int8"]), "--champion", REFERENCE_ALIAS, check=False)
    assert passed.returncode == 0, passed.stdout + passed.stderr
