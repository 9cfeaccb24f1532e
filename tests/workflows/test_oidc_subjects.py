"""The workflows request exactly the OIDC subjects the roles in modules/github_oidc.py trust: a job in a GitHub
environment gets `repo:<owner>/<name>:environment:<name>`, a job without one on a pull request gets
`repo:<owner>/<name>:pull_request`. A plan job put into an environment, or a deploy job taken out of one, would be
refused by AWS at run time; here it fails before the merge."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from infra.config import ENVIRONMENTS

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / ".github" / "workflows" / "infra.yml"


def _jobs() -> dict[str, dict[str, Any]]:
    jobs: dict[str, dict[str, Any]] = yaml.safe_load(INFRA.read_text())["jobs"]
    return jobs


def _role_input(job: dict[str, Any]) -> str:
    (step,) = [s for s in job["steps"] if "configure-aws-credentials" in s.get("uses", "")]
    return str(step["with"]["role-to-assume"])


def test_plan_jobs_run_outside_any_environment_with_the_plan_role() -> None:
    plan = _jobs()["plan"]
    assert "environment" not in plan, "an environment would change the OIDC subject away from pull_request"
    assert "pull_request" in plan["if"]
    assert "AWS_PLAN_ROLE_ARN" in _role_input(plan)


def test_deploy_jobs_run_in_the_environment_whose_subject_the_deploy_role_trusts() -> None:
    deploys = {name: job for name, job in _jobs().items() if name.startswith("deploy-")}
    assert {job["environment"] for job in deploys.values()} == set(ENVIRONMENTS)
    for job in deploys.values():
        assert _role_input(job) == "${{ vars.AWS_DEPLOY_ROLE_ARN }}"
