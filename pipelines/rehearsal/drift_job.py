"""The drift CronJob's job template, rendered and run once with `podman kube play` against the local MLflow, S3
and Pushgateway.

Inputs of the renderer (not edits): the drift-job image built here, the local Pushgateway, MLflow and
inference-log bucket. The edits are `changes.drift_job_for_this_machine`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from core import contracts, endpoints
from infra.containers.images import BuiltImage
from modules.k8s import MonitoringProps, render_all
from pipelines.rehearsal import pods
from pipelines.rehearsal.changes import Change, Manifest, drift_job_for_this_machine
from pipelines.rehearsal.model_server import registry_secrets, rehearsal_port, render_props, s3_env


@dataclass(frozen=True)
class JobRun:
    kube_file: Path  # `pods.down` it once done: the pod stays for its log and the checks
    exited: pods.Exited
    rendered: Manifest
    changes: list[Change]


def rendered_cronjob(version: int, server: BuiltImage, job: BuiltImage) -> Manifest:
    monitoring = MonitoringProps(drift_image=job.ref, pushgateway_url=endpoints.pushgateway_url())
    manifests = render_all(render_props(version, server, monitoring=monitoring))["monitoring"]
    (cronjob,) = [m for m in manifests if m["kind"] == "CronJob"]
    return cronjob


def run(version: int, since: datetime, server: BuiltImage, job: BuiltImage) -> JobRun:
    """Run the job once over the logs of `version` since `since`; return when its container exits."""
    cronjob = rendered_cronjob(version, server, job)
    args = ["--version", str(version), "--since", since.isoformat(timespec="seconds")]
    pod, changes = drift_job_for_this_machine(
        cronjob,
        suffix=f"p{rehearsal_port()}",
        s3_env=s3_env(),
        args=args,
        secrets=registry_secrets(contracts.REGISTRY_READER),
    )
    deadline = cronjob["spec"]["jobTemplate"]["spec"]["activeDeadlineSeconds"]
    path = pods.kube_file(pod)
    return JobRun(kube_file=path, exited=pods.run_to_exit(path, deadline), rendered=cronjob, changes=changes)
