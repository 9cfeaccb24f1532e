"""Offline terraform init/validate/plan of every AWS stack (skipped only where terraform or the mirror is absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra import plan
from tests.infra.conftest import Synth


@pytest.fixture(scope="module")
def plans(synth: Synth, tmp_path_factory: pytest.TempPathFactory) -> dict[str, plan.StackPlan]:
    try:
        plan.terraform_binary()
    except plan.OfflinePlanUnavailable as exc:
        pytest.skip(f"offline plan unavailable on this machine: {exc}")
    work = tmp_path_factory.mktemp("plan")
    results = plan.plan_all(synth.outdir, work, echo=False)
    plan.write_report(results, work / "reports")
    return {r.stack: r for r in results}


def test_every_aws_stack_plans(plans: dict[str, plan.StackPlan]) -> None:
    assert len(plans) == 9
    for name, result in plans.items():
        print(f"{name}: {result.total} to create")
        assert result.total > 10, name


def test_plan_creates_what_each_layer_promises(plans: dict[str, plan.StackPlan]) -> None:
    assert plans["mlp-dev-network"].creates["aws_nat_gateway"] == 1
    assert plans["mlp-prod-network"].creates["aws_nat_gateway"] == 3
    for env in ("dev", "staging", "prod"):
        cluster = plans[f"mlp-{env}-cluster"].creates
        assert cluster["aws_eks_cluster"] == 1 and cluster["aws_eks_node_group"] == 3
        data = plans[f"mlp-{env}-data"].creates
        # Buckets: artifacts, inference logs, Qdrant snapshots.
        assert data["aws_db_instance"] == 1 and data["aws_s3_bucket"] == 3


def test_override_changes_only_backend_provider_and_upstream_state(synth: Synth) -> None:
    import json

    config = json.loads((synth.outdir / "stacks" / "mlp-dev-data" / "cdk.tf.json").read_text())
    override = plan.override_for(config)
    assert set(override) == {"terraform", "provider", "data"}
    assert set(override["data"]["terraform_remote_state"]) == set(config["data"]["terraform_remote_state"])  # type: ignore[index]
    outputs = plan.upstream_outputs(config)
    assert any(v.startswith("https://oidc.eks") for o in outputs.values() for v in o.values())


def test_report_is_written(plans: dict[str, plan.StackPlan], tmp_path: Path) -> None:
    path = plan.write_report(list(plans.values()), tmp_path)
    assert "mlp-prod-cluster" in path.read_text() and (tmp_path / "infra-plan.json").exists()
