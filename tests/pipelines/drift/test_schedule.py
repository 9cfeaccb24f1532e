"""The scheduled drift workflow and the alert it feeds agree with the policy and the rules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from core import rules
from core.policy import policy
from pipelines.drift.demo import DRIFT_ALERT

REPO_ROOT = Path(__file__).resolve().parents[3]
WORKFLOW = REPO_ROOT / ".github" / "workflows" / "drift.yml"


def _workflow() -> dict[Any, Any]:
    data: dict[Any, Any] = yaml.safe_load(WORKFLOW.read_text())
    return data


def test_workflow_cron_is_the_policy_schedule() -> None:
    triggers = _workflow()[True]  # YAML 1.1 reads the key `on` as True
    assert [s["cron"] for s in triggers["schedule"]] == [policy().drift.schedule_cron]


def test_workflow_runs_the_check_with_oidc() -> None:
    wf = _workflow()
    assert wf["permissions"]["id-token"] == "write"
    steps = [s for job in wf["jobs"].values() for s in job["steps"]]
    actions = {s["uses"].split("@", 1)[0] for s in steps if "uses" in s}  # pinned by SHA: test_supply_chain
    assert {"actions/checkout", "actions/setup-python", "aws-actions/configure-aws-credentials"} <= actions
    assert any("mlp drift check" in s.get("run", "") for s in steps)


def test_alert_name_and_runbook_match_the_rules() -> None:
    assert DRIFT_ALERT in rules.RUNBOOKS
    assert (REPO_ROOT / "runbooks" / f"{rules.RUNBOOKS[DRIFT_ALERT]}.md").exists()
