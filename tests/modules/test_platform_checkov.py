"""checkov --framework kubernetes over the objects of the release path that are not `mlp render k8s` output: the
runner pods as ARC creates them from the scale sets' template (with their namespace's NetworkPolicies), the release
runner's RBAC, the retraining Job, the database bootstrap Job and the registry users' Job (with MLflow's namespace
policies). Zero
failed checks; skips with their reasons in modules/.checkov-runners.yaml."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.promql import SERVING_NAMESPACE
from modules import database_bootstrap, registry_users, runners
from modules.k8s import platform
from modules.k8s.retrain import RetrainJobProps, retrain_job

REPO = Path(__file__).resolve().parents[2]
CHECKOV = REPO / ".venv-checkov" / "bin" / "checkov"
IMAGE = "ghcr.io/actions/actions-runner:2.329.0"
RETRAIN_PROPS = RetrainJobProps(
    image="123456789012.dkr.ecr.us-east-1.amazonaws.com/mlp-dev/drift-job@sha256:" + "a" * 64,
    model_name="review-polarity-classifier",
    parent_version=3,
    alert_fingerprint="0123456789abcdef",
    drift_score="0.9",
    mlflow_tracking_uri="http://mlflow.mlflow.svc.cluster.local:5000",
    signing_kms_key="alias/mlp-dev-artifacts",
    artifact_public_key="MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE",
)


def _objects() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for rk in runners.KINDS:
        template = runners.runner_template(rk, image=IMAGE)
        meta = {"name": rk.kind, "namespace": platform.RUNNER_NAMESPACE, **template["metadata"]}
        out.append({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": template["spec"]})
    out += database_bootstrap.manifests(
        namespace="mlflow",
        region="us-east-1",
        image="burakince/mlflow:3.14.0",
        db_host="mlp-dev-mlflow.abc.us-east-1.rds.amazonaws.com",
        master_secret_arn="arn:aws:secretsmanager:us-east-1:123456789012:secret:rds-db-1",
        app_secret="mlflow-db",
        role_arn="arn:aws:iam::123456789012:role/mlp-dev-mlflow-db-bootstrap",
        databases=["mlflow", "mlflow_auth"],
    )
    out += registry_users.manifests(namespace="mlflow", image="burakince/mlflow:3.14.0", remote_key="mlp-dev/x")
    out += runners.serving_rbac(runners.release_shapes())
    out += runners.retrain_rbac()
    out.append(retrain_job(RETRAIN_PROPS))
    owned = platform.owned_namespaces(
        vpc_cidr="10.10.0.0/16",
        serving_namespace=SERVING_NAMESPACE,
        gateway_name="mlp-gateway",
        listener_ports=[80],
        model_port=3000,
    )
    for ns in owned:
        if ns.name in {platform.RUNNER_NAMESPACE, "mlflow"}:
            out += platform.namespace_manifests(ns)
    return out


def test_checkov_finds_no_failed_check(tmp_path: Path) -> None:
    if not CHECKOV.exists():
        pytest.fail(f"{CHECKOV} missing: run `bash infra/tools/install-checkov.sh` (make bootstrap does)")
    (tmp_path / "objects.yaml").write_text(yaml.safe_dump_all(_objects(), sort_keys=False))
    proc = subprocess.run(
        [str(CHECKOV), "-d", str(tmp_path), "--config-file", str(REPO / "modules/.checkov-runners.yaml"), "-o", "json"],
        capture_output=True,
        text=True,
        timeout=300,
        env={"BC_SKIP_MAPPING": "TRUE", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    report = json.loads(proc.stdout)
    reports = report if isinstance(report, list) else [report]
    failed = [f"{c['check_id']} {c['resource']}" for r in reports for c in r["results"]["failed_checks"]]
    assert reports[0]["summary"]["passed"] > 100
    assert failed == [], failed
