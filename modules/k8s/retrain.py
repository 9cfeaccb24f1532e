"""The retraining Job: `mlp model retrain` in the cluster, one per drift alert (`mlp render retrain-job`).

The model-retrain workflow renders it with the drifted version and the alert, applies it and waits for it
(docs/drift.md, The closed loop in the cluster). It runs the drift-job image's `pipelines.retrain.job` in the
release runners' namespace as the release runner's identity: that ServiceAccount's IRSA role is the one principal
allowed to sign with the artifact key (modules/artifact_signing.py), and the release bot's registry Secret is
there; a retraining does what a registration by the release path does, with no new principal that can sign.
The pod has no Kubernetes token, a read-only root, and egress to MLflow and HTTPS only (modules/k8s/platform.py).
"""

from __future__ import annotations

import hashlib
from typing import Any

from pydantic import Field, model_validator

from core import contracts, env
from modules.k8s import common as c
from modules.k8s.platform import RETRAIN_POD_NAME
from modules.k8s.props import Props
from modules.workload_roles import RELEASE_RUNNER

COMMAND = ("python", "-m", "pipelines.retrain.job")
POD_LABELS = {"app.kubernetes.io/name": RETRAIN_POD_NAME, "app.kubernetes.io/part-of": c.PART_OF}
SCRATCH = "/tmp"
# The rehearsal measured a peak of 574 MiB (tests/integration/test_rehearsal_retrain.py prints it: the int8 encoder
# over ~4,000 texts, a logistic regression, the registration); the limit leaves 2.5x over it.
RESOURCES = {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "1536Mi"}}
DEADLINE_SECONDS = 1800  # the workflow's timeout-minutes: 30


class RetrainJobProps(Props):
    image: str = Field(min_length=1, description="The drift-job image (it runs the retraining too), by tag or digest")
    model_name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    parent_version: int = Field(ge=1, description="The version that drifted: the retraining's parent")
    trigger: str = Field(default="drift", pattern=r"^(drift|manual)$")
    alert_fingerprint: str = Field(default="", pattern=r"^[0-9a-f]{0,32}$")
    drift_score: str = Field(default="", pattern=r"^[0-9.eE+-]{0,24}$")
    mlflow_tracking_uri: str = Field(min_length=1, description="MLflow's in-cluster address")
    signing_kms_key: str = Field(min_length=1, description="The artifact-signing KMS key (ARN or alias)")
    artifact_public_key: str = Field(min_length=1, description="Verifies the parent it downloads (not a secret)")
    candidate: bool = Field(default=True, description="Point the candidate alias at the new version (the release)")

    @model_validator(mode="after")
    def _an_alert_only_for_drift(self) -> RetrainJobProps:
        if self.trigger == "drift" and not self.alert_fingerprint:
            raise ValueError("a drift retraining names its alert: set alert_fingerprint")
        if self.trigger == "manual" and (self.alert_fingerprint or self.drift_score):
            raise ValueError("alert_fingerprint and drift_score describe a drift alert: use trigger drift")
        return self


def job_name(props: RetrainJobProps) -> str:
    """One Job per alert (a re-delivered alert finds its Job already there): the fingerprint, or a hash of the
    inputs for a manual retraining."""
    key = props.alert_fingerprint or hashlib.sha256(props.model_dump_json().encode()).hexdigest()
    return f"retrain-{props.model_name}"[:44].rstrip("-") + f"-v{props.parent_version}-{key[:10]}"


def args(props: RetrainJobProps) -> list[str]:
    out = ["--from", str(props.parent_version), "--trigger", props.trigger, "--scratch", f"{SCRATCH}/retrain"]
    if props.trigger == "drift":
        out += ["--alert-fingerprint", props.alert_fingerprint, "--drift-score", props.drift_score]
    return out + (["--candidate"] if props.candidate else [])


def retrain_job(props: RetrainJobProps) -> c.Manifest:
    container: dict[str, Any] = {
        "name": "retrain",
        "image": props.image,
        "imagePullPolicy": "IfNotPresent",
        "command": list(COMMAND),
        "args": args(props),
        "env": [
            {"name": env.MODEL_NAME.name, "value": props.model_name},
            {"name": "MLFLOW_TRACKING_URI", "value": props.mlflow_tracking_uri},
            *c.registry_credential_env(contracts.REGISTRY_RELEASE_BOT),
            {"name": env.ARTIFACT_SIGNING_KMS_KEY.name, "value": props.signing_kms_key},
            {"name": env.ARTIFACT_PUBLIC_KEY.name, "value": props.artifact_public_key},
            {"name": "HOME", "value": SCRATCH},
            {"name": "TMPDIR", "value": SCRATCH},
        ],
        "resources": RESOURCES,
        "securityContext": c.container_security(),
        "volumeMounts": [{"name": "scratch", "mountPath": SCRATCH}],
    }
    labels = {**POD_LABELS, "mlp.io/model": props.model_name, "mlp.io/parent-version": str(props.parent_version)}
    pod_spec = {
        "serviceAccountName": RELEASE_RUNNER.service_account,  # its IRSA role signs
        "automountServiceAccountToken": False,  # IRSA's token is projected either way; no Kubernetes API
        "restartPolicy": "Never",
        "securityContext": c.pod_security(),
        "nodeSelector": dict(c.SYSTEM_NODE_SELECTOR),
        "containers": [container],
        "volumes": [{"name": "scratch", "emptyDir": {"sizeLimit": "4Gi"}}],
    }
    annotations = {
        "mlp.io/alert-fingerprint": props.alert_fingerprint,
        "mlp.io/drift-score": props.drift_score,
        "mlp.io/runbook": "runbooks/retraining-refused.md",
    }
    meta = c.metadata(job_name(props), RELEASE_RUNNER.namespace, labels, annotations=annotations)
    return c.manifest(
        "batch/v1",
        "Job",
        meta,
        spec={
            # No retry: a failed retraining registered nothing, and a second try is the next alert's (breakers).
            "backoffLimit": 0,
            "activeDeadlineSeconds": DEADLINE_SECONDS,
            "ttlSecondsAfterFinished": 7 * 86400,  # its log stays readable for a week
            "template": {"metadata": {"labels": labels}, "spec": pod_spec},
        },
    )
