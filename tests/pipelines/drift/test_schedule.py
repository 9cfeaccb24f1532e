"""The scheduled drift workflow and the alert it feeds agree with the policy and the rules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from core import contracts, rules
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


def test_workflow_runs_the_check_on_the_in_cluster_drift_runners_without_oidc() -> None:
    # MLflow has no public endpoint (decision 0143): the check runs where it is reachable, as the runner's IRSA role.
    wf = _workflow()
    assert "id-token" not in wf["permissions"]
    (job,) = [j for j in wf["jobs"].values() if any("mlp drift check" in s.get("run", "") for s in j["steps"])]
    kind = job["runs-on"].partition("-${{")[0]
    assert kind == contracts.DRIFT_RUNNERS and contracts.runner_scale_set(kind, "prod") == f"{kind}-prod"
    actions = {s["uses"].split("@", 1)[0] for s in job["steps"] if "uses" in s}  # pinned by SHA: test_supply_chain
    assert {"actions/checkout", "actions/setup-python"} <= actions
    assert "aws-actions/configure-aws-credentials" not in actions


def test_alert_name_and_runbook_match_the_rules() -> None:
    assert DRIFT_ALERT in rules.RUNBOOKS
    assert (REPO_ROOT / "runbooks" / f"{rules.RUNBOOKS[DRIFT_ALERT]}.md").exists()
