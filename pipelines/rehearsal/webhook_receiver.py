"""The registry-webhook receiver's rendered Deployment, run with `podman kube play`, called by the local MLflow.

Inputs of the renderer (not edits): the images built here and a repository name. The edits are
`changes.webhook_receiver_for_this_machine`: a throwaway secret inline and GitHub's API replaced by a stand-in.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from core import contracts, endpoints
from infra.containers.images import BuiltImage
from modules.k8s import WebhookProps, render_all
from modules.k8s import webhook as receiver
from pipelines.rehearsal import pods
from pipelines.rehearsal.changes import Change, Manifest, webhook_receiver_for_this_machine
from pipelines.rehearsal.model_server import rehearsal_port, render_props

REPOSITORY = "rehearsal/ml-platform"  # what the stand-in expects the dispatch to name


@dataclass(frozen=True)
class ReceiverRun:
    kube_file: Path
    container_id: str
    url: str
    ready_seconds: float
    rendered: Manifest
    changes: list[Change]

    @property
    def delivery_url(self) -> str:
        return f"{self.url}{contracts.WEBHOOK_ROUTE}"


ALERTMANAGER_TOKEN = "rehearsal-alertmanager-token"  # what the rehearsal's Secret holds for Alertmanager's bearer


def rendered_deployment(version: int, server: BuiltImage, image: BuiltImage) -> Manifest:
    webhook = WebhookProps(github_repository=REPOSITORY, image=image.ref)
    manifests = render_all(render_props(version, server, webhook=webhook))["webhook"]
    (deployment,) = [m for m in manifests if m["kind"] == "Deployment"]
    return deployment


def port() -> int:
    """The port after the model server's rehearsal port."""
    return rehearsal_port() + 1


def play(version: int, server: BuiltImage, image: BuiltImage, webhook_secret: str, github_api_url: str) -> ReceiverRun:
    """Run the receiver; return once its readiness path answers 200, or raise with the log."""
    deployment = rendered_deployment(version, server, image)
    secret = WebhookProps.model_fields["secret_name"].default
    secrets = {
        (secret, receiver.SECRET_KEY_WEBHOOK): webhook_secret,
        (secret, receiver.SECRET_KEY_GITHUB): "rehearsal-token",
        (secret, receiver.SECRET_KEY_ALERTMANAGER): ALERTMANAGER_TOKEN,
    }
    manifest, changes = webhook_receiver_for_this_machine(
        deployment, port=port(), secrets=secrets, github_api_url=github_api_url
    )
    probe = manifest["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
    budget = float(probe["periodSeconds"] * probe["failureThreshold"]) + 30  # no startupProbe: first checks + 30 s
    path = pods.kube_file(manifest)
    started = time.monotonic()
    cid = pods.play(path)
    url = f"http://{endpoints.HOST}:{port()}"
    try:
        ready = pods.wait_ready(cid, f"{url}{probe['httpGet']['path']}", budget, started)
    except pods.RehearsalError:
        pods.down(path)
        raise
    return ReceiverRun(path, cid, url, ready, deployment, changes)
