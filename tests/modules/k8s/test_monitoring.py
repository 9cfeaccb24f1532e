from __future__ import annotations

import json

from core.dashboards import dashboards
from core.rules import rule_groups
from modules.k8s import monitoring
from tests.modules.k8s.conftest import by_kind


def test_prometheus_rule_wraps_the_observability_rule_groups(deployments):
    (rule,) = by_kind(deployments, "PrometheusRule")
    assert rule["spec"]["groups"] == rule_groups()
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"


def test_one_configmap_per_dashboard(deployments):
    maps = [m for m in by_kind(deployments, "ConfigMap") if m["metadata"]["labels"].get("grafana_dashboard") == "1"]
    boards = dashboards()
    assert len(maps) == len(boards)
    loaded = [json.loads(v) for m in maps for v in m["data"].values()]
    assert sorted(json.dumps(b, sort_keys=True) for b in loaded) == sorted(
        json.dumps(b, sort_keys=True) for b in boards.values()
    )


def test_drift_cronjob_schedule_and_hardening(deployments, pol):
    (job,) = by_kind(deployments, "CronJob")
    assert job["spec"]["schedule"] == pol.drift.schedule_cron
    assert job["spec"]["concurrencyPolicy"] == "Forbid"
    pod = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert c["command"] == list(monitoring.DRIFT_COMMAND)
    assert c["image"].rsplit(":", 1)[0].endswith("/drift-job"), "the drift job runs its own image, not the server's"
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert c["resources"]["limits"] and c["resources"]["requests"]


def test_dcgm_service_monitor_only_in_the_gpu_variant(deployments, gpu):
    assert not by_kind(deployments, "ServiceMonitor")
    (sm,) = by_kind(gpu, "ServiceMonitor")
    assert sm["spec"]["selector"]["matchLabels"] == {"app": "nvidia-dcgm-exporter"}


def test_drift_job_runs_under_its_own_irsa_role_with_the_settings_its_cli_reads() -> None:
    from core import env as e
    from core.policy import policy
    from modules.k8s.props import MonitoringProps, ServingProps

    serving = ServingProps(
        image_repository="123456789012.dkr.ecr.us-east-1.amazonaws.com/model-server",
        image_tag="abc",
        mlflow_tracking_uri="http://mlflow.mlflow:5000",
        irsa_role_arn="arn:aws:iam::123456789012:role/mlp-model-server",
        inference_log_bucket="mlp-dev-inference-logs-123456789012",
    )
    mon = MonitoringProps(drift_irsa_role_arn="arn:aws:iam::123456789012:role/mlp-drift-job")
    sa = monitoring.drift_service_account(serving, mon, "m")
    job = monitoring.drift_cronjob(serving, mon, policy(), "m")
    pod = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == sa["metadata"]["name"] == "drift-job"
    assert sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].endswith("role/mlp-drift-job")
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert env[e.INFERENCE_LOG_BUCKET.name] == serving.inference_log_bucket and env[e.MODEL_NAME.name] == "m"
    assert pod["containers"][0]["image"] == "123456789012.dkr.ecr.us-east-1.amazonaws.com/drift-job:abc"
    assert env[e.PUSHGATEWAY_URL.name].startswith("http")
