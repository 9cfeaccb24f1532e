"""The retraining Job, rendered for a drifted version and run once with `podman kube play` against the local MLflow.

Inputs of the renderer (not edits): the drift-job image built here, the local MLflow and the local artifact public
key. The edits are `changes.retrain_job_for_this_machine`: among them, the local signing key instead of KMS.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core import contracts, endpoints
from core.policy import policy
from infra.containers.images import BuiltImage
from infra.local.paths import sub
from infra.local.secrets import ARTIFACT_SIGNING_KEY, artifact_public_key, secret_file
from modules.k8s import common as k8s_common
from modules.k8s.retrain import RetrainJobProps, retrain_job
from pipelines.rehearsal import pods
from pipelines.rehearsal.changes import Change, Manifest, retrain_job_for_this_machine
from pipelines.rehearsal.model_server import registry_secrets, rehearsal_port

PLACEHOLDER_KMS_KEY = "alias/mlp-artifact-signing"  # rendered, then replaced (see the changes)


@dataclass(frozen=True)
class RetrainRun:
    exited: pods.Exited
    rendered: Manifest
    changes: list[Change]

    @property
    def events(self) -> list[dict[str, Any]]:
        """The retraining log the Job prints on stdout (one JSON object per line)."""
        lines = (ln.strip() for ln in self.exited.log.splitlines())
        return [json.loads(ln) for ln in lines if ln.startswith("{") and '"event"' in ln]


def rendered_job(parent: int, image: BuiltImage, fingerprint: str, score: str) -> Manifest:
    props = RetrainJobProps(
        image=image.ref,
        model_name=policy().release.default_model,
        parent_version=parent,
        alert_fingerprint=fingerprint,
        drift_score=score,
        mlflow_tracking_uri=endpoints.mlflow_url(),
        signing_kms_key=PLACEHOLDER_KMS_KEY,
        artifact_public_key=artifact_public_key(),
    )
    return retrain_job(props)


def signing_key_for_the_pod() -> Path:
    """A copy of the local signing key the pod's user (uid 10001) alone may read, in a folder of its own."""
    folder = sub("rehearsal") / "retrain-signing-key"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(mode=0o700)
    key = folder / "artifact-signing-key.pem"
    shutil.copyfile(secret_file(ARTIFACT_SIGNING_KEY), key)
    for path, mode in ((key, 0o400), (folder, 0o500)):
        os.chown(path, k8s_common.RUN_AS, k8s_common.RUN_AS)
        path.chmod(mode)
    return key


def run(parent: int, image: BuiltImage, fingerprint: str, score: str) -> RetrainRun:
    """Run the Job once for `parent` and the alert; return when its container exits."""
    job = rendered_job(parent, image, fingerprint, score)
    pod, changes = retrain_job_for_this_machine(
        job,
        suffix=f"p{rehearsal_port()}",
        secrets=registry_secrets(contracts.REGISTRY_RELEASE_BOT),
        signing_key_file=signing_key_for_the_pod(),
    )
    path = pods.kube_file(pod)
    try:
        exited = pods.run_to_exit(path, job["spec"]["activeDeadlineSeconds"])
    finally:
        pods.down(path)
    return RetrainRun(exited, job, changes)
