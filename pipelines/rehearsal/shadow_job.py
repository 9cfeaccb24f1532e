"""A release's shadow comparison as the cluster runs it: the `<model>-shadow-compare` AnalysisTemplate rendered in
rollout mode, its Job run once with `podman kube play` against the local S3 and Pushgateway; and the
`<model>-shadow-quality` template's queries, bound as Argo binds them, for the caller to read from the local
Prometheus.

Inputs of the renderer (not edits): the images built here and the local Pushgateway. The edits are
`changes.shadow_compare_for_this_machine`.
"""

from __future__ import annotations

from core import endpoints
from infra.containers.images import BuiltImage
from modules.k8s import MonitoringProps, release, render_all
from pipelines.rehearsal import pods
from pipelines.rehearsal.changes import Manifest, shadow_compare_for_this_machine
from pipelines.rehearsal.drift_job import JobRun
from pipelines.rehearsal.model_server import rehearsal_port, render_props, s3_env


def rendered_templates(candidate: int, stable: int, server: BuiltImage, job: BuiltImage) -> dict[str, Manifest]:
    """Template name -> AnalysisTemplate, as `mlp render k8s --mode rollout` renders them for this release."""
    monitoring = MonitoringProps(drift_image=job.ref, pushgateway_url=endpoints.pushgateway_url())
    props = render_props(candidate, server, monitoring=monitoring).model_copy(
        update={"mode": "rollout", "weights": {stable: 90, candidate: 10}}
    )
    manifests = render_all(props)["release"]
    return {m["metadata"]["name"]: m for m in manifests if m["kind"] == "AnalysisTemplate"}


def bind(query: str, candidate: int, stable: int) -> str:
    """A template query as Argo sends it to Prometheus for this release."""
    return query.replace(release.CANARY, str(candidate)).replace(release.STABLE, str(stable))


def run(candidate: int, stable: int, window_seconds: int, server: BuiltImage, job: BuiltImage) -> JobRun:
    """Run the comparison over the last `window_seconds`; return when its container exits."""
    model = render_props(candidate, server).model_name
    template = rendered_templates(candidate, stable, server, job)[release.compare_template_name(model)]
    args = {
        release.CANARY_ARG: str(candidate),
        release.STABLE_ARG: str(stable),
        release.WINDOW_ARG: str(window_seconds),
    }
    pod, changes = shadow_compare_for_this_machine(template, suffix=f"p{rehearsal_port()}", s3_env=s3_env(), args=args)
    deadline = template["spec"]["metrics"][0]["provider"]["job"]["spec"]["activeDeadlineSeconds"]
    path = pods.kube_file(pod)
    return JobRun(kube_file=path, exited=pods.run_to_exit(path, deadline), rendered=template, changes=changes)
