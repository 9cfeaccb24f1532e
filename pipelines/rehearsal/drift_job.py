"""The drift CronJob's job template, rendered and run once with `podman kube play` against the local MLflow, S3
and Pushgateway.

Inputs of the renderer (not edits): the drift-job image built here, the local Pushgateway, MLflow and
inference-log bucket. The edits are `changes.drift_job_for_this_machine`.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from core import contracts, endpoints
from infra.containers.images import BuiltImage
from modules.k8s import MonitoringProps, render_all
from pipelines.rehearsal import pods
from pipelines.rehearsal.changes import Change, Manifest, drift_job_for_this_machine
from pipelines.rehearsal.load import memory_bytes
from pipelines.rehearsal.model_server import registry_secrets, rehearsal_port, render_props, s3_env


@dataclass(frozen=True)
class JobRun:
    kube_file: Path
    container_id: str
    exit_code: int
    seconds: float
    peak_memory_bytes: float
    oom_killed: bool
    log: str
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
    started = time.monotonic()
    cid = pods.play(path)
    peak = 0.0
    while pods.inspect(cid, ".State.Status") not in {"exited", "stopped"}:
        if time.monotonic() - started > deadline:
            raise pods.RehearsalError(
                f"the drift job ran past activeDeadlineSeconds={deadline}:\n{pods.container_log(cid)}"
            )
        with contextlib.suppress(Exception):  # the container may end between the check and the sample
            peak = max(peak, memory_bytes(cid))
        time.sleep(1)
    return JobRun(
        kube_file=path,
        container_id=cid,
        exit_code=int(pods.inspect(cid, ".State.ExitCode")),
        seconds=time.monotonic() - started,
        peak_memory_bytes=peak,
        oom_killed=pods.inspect(cid, ".State.OOMKilled") == "true",
        log=pods.container_log(cid, 200),
        rendered=cronjob,
        changes=changes,
    )
