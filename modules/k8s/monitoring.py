"""Cluster monitoring objects: the PrometheusRule wrapping the same rule groups the local Prometheus loads, one
Grafana dashboard ConfigMap per dashboard (the Grafana sidecar picks up `grafana_dashboard: "1"`), the hourly drift
CronJob, and the ServiceMonitor for NVIDIA's DCGM exporter.

Rules and dashboards come from the specification (`core.rules`, `core.dashboards`), rendered from the policy.
"""

from __future__ import annotations

import json
from typing import Any

from core import contracts, env, images, rules
from core import dashboards as core_dashboards
from core.policy import Policy
from modules.k8s import common as c
from modules.k8s import serving
from modules.k8s.props import MonitoringProps, ServingProps
from modules.k8s.versions import MONITORING_API


def drift_job_name(model_name: str) -> str:
    """One drift CronJob per catalogue model: each reads its own model's inference log."""
    return f"{model_name}-drift"


# The drift image's entry point (pipelines/drift/job.py): S3 through the pod's IRSA role, files in its /tmp.
DRIFT_COMMAND = ("python", "-m", "pipelines.drift.job")
DASHBOARD_LABEL = "grafana_dashboard"


def prometheus_rule(namespace: str, release_label: str, groups: list[dict[str, Any]] | None = None) -> c.Manifest:
    groups = rules.rule_groups() if groups is None else groups
    meta = c.metadata("mlp-rules", namespace, {"app.kubernetes.io/part-of": c.PART_OF, "release": release_label})
    return c.manifest(MONITORING_API, "PrometheusRule", meta, spec={"groups": groups})


def dashboard_configmaps(namespace: str, dashboards: dict[str, dict[str, Any]] | None = None) -> list[c.Manifest]:
    boards = core_dashboards.dashboards() if dashboards is None else dashboards
    out = []
    for name, board in sorted(boards.items()):
        slug = name.lower().replace("_", "-").replace(" ", "-")
        meta = c.metadata(
            f"mlp-dashboard-{slug}", namespace, {"app.kubernetes.io/part-of": c.PART_OF, DASHBOARD_LABEL: "1"}
        )
        out.append(c.manifest("v1", "ConfigMap", meta, data={f"{slug}.json": json.dumps(board, sort_keys=True)}))
    return out


DRIFT_SERVICE_ACCOUNT = "drift-job"  # trusted by the drift-job IRSA role that modules/workload_roles.py creates


def drift_service_account(props: ServingProps, mon: MonitoringProps, model_name: str) -> c.Manifest:
    annotations = {"eks.amazonaws.com/role-arn": mon.drift_irsa_role_arn} if mon.drift_irsa_role_arn else None
    # Shared by every model's drift job (one IRSA role): its labels name no model.
    meta = c.metadata(DRIFT_SERVICE_ACCOUNT, props.namespace, c.platform_labels("drift"), annotations=annotations)
    return c.manifest("v1", "ServiceAccount", meta, automountServiceAccountToken=False)


def drift_cronjob(props: ServingProps, mon: MonitoringProps, policy: Policy, model_name: str) -> c.Manifest:
    container = {
        "name": "drift-check",
        "image": mon.drift_image or props.sibling_image(images.DRIFT_JOB),
        "imagePullPolicy": "Always",
        "command": list(DRIFT_COMMAND),
        "env": [
            {"name": env.MODEL_NAME.name, "value": model_name},
            {"name": "MLFLOW_TRACKING_URI", "value": props.mlflow_tracking_uri},
            {"name": env.INFERENCE_LOG_BUCKET.name, "value": props.inference_log_bucket},
            {"name": env.PUSHGATEWAY_URL.name, "value": mon.pushgateway_url},
            {"name": "HOME", "value": "/tmp"},
            {"name": "TMPDIR", "value": "/tmp"},
            c.artifact_key_env(),  # the job downloads the champion: verified like a model server's
            *c.registry_credential_env(contracts.REGISTRY_READER),
        ],
        # Evidently over a day of logged texts: pandas frames of a few 10k rows.
        "resources": {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
        "securityContext": c.container_security(),
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    pod_spec = {
        "serviceAccountName": DRIFT_SERVICE_ACCOUNT,  # its own IRSA role: read logs, write reports, nothing else
        "automountServiceAccountToken": False,
        "restartPolicy": "Never",
        "securityContext": c.pod_security(),
        "nodeSelector": dict(serving.CPU_NODE_SELECTOR),
        "containers": [container],
        "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}}],
    }
    meta = c.metadata(drift_job_name(model_name), props.namespace, c.labels(model_name, component="drift"))
    return c.manifest(
        "batch/v1",
        "CronJob",
        meta,
        spec={
            "schedule": policy.drift.schedule_cron,
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": 600,
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {
                "spec": {
                    "backoffLimit": 1,
                    "activeDeadlineSeconds": 3000,  # well inside the hourly schedule
                    "ttlSecondsAfterFinished": 86400,
                    "template": {"metadata": {"labels": c.labels(model_name, component="drift")}, "spec": pod_spec},
                }
            },
        },
    )


def dcgm_service_monitor(mon: MonitoringProps) -> c.Manifest:
    meta = c.metadata(
        "nvidia-dcgm-exporter",
        mon.dcgm_namespace,
        {"app.kubernetes.io/part-of": c.PART_OF, "release": mon.prometheus_release_label},
    )
    return c.manifest(
        MONITORING_API,
        "ServiceMonitor",
        meta,
        spec={
            "selector": {"matchLabels": {"app": "nvidia-dcgm-exporter"}},
            "namespaceSelector": {"matchNames": [mon.dcgm_namespace]},
            "endpoints": [{"port": "gpu-metrics", "path": "/metrics", "interval": "15s"}],
        },
    )
