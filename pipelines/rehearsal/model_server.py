"""The model server's Deployment, rendered for one live version and run with `podman kube play`.

Inputs of the renderer (not edits): the image built here, the local MLflow as the tracking URI and the local
inference-log bucket. The edits are
`changes.for_this_machine`. Readiness is checked from the host, as the kubelet probes a host-network pod: the
container must answer the startupProbe's path within its budget (period x failureThreshold).
"""

from __future__ import annotations

import contextlib
import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from core import contracts, endpoints
from core.policy import policy
from infra.containers.images import BuiltImage
from infra.containers.podman import PodmanError, podman
from infra.local import registry_auth, s3
from infra.local.paths import sub
from infra.local.secrets import write_private
from modules.k8s import RenderProps, ServingProps, render_all
from pipelines.rehearsal.changes import Change, Manifest, for_this_machine

EXAMPLE_ROLE_ARN = "arn:aws:iam::123456789012:role/mlp-model-server"  # rendered into the ServiceAccount only


class RehearsalError(RuntimeError):
    """The pod did not run as rendered; the message carries the container's log."""


@dataclass(frozen=True)
class PodRun:
    kube_file: Path
    container_id: str
    url: str
    ready_seconds: float
    budget_seconds: float
    changes: list[Change]


def rehearsal_port() -> int:
    """The first port after the local model servers' slots (shifted with MLP_PORT_OFFSET like every local port)."""
    ports = policy().ports
    return ports.model_server_base + ports.model_server_slots


def rendered_deployment(version: int, image: BuiltImage) -> Manifest:
    repository, tag = image.ref.rsplit(":", 1)
    props = RenderProps(
        model_name=policy().release.model_name,
        weights={version: 100},
        serving=ServingProps(
            image_repository=repository,
            image_tag=tag,
            irsa_role_arn=EXAMPLE_ROLE_ARN,
            mlflow_tracking_uri=endpoints.mlflow_url(),
            inference_log_bucket=contracts.INFERENCE_LOG_BUCKET,
        ),
    )
    (deployment,) = [m for m in render_all(props)["serving"] if m["kind"] == "Deployment"]
    return deployment


def startup_budget(deployment: Manifest) -> float:
    probe = deployment["spec"]["template"]["spec"]["containers"][0]["startupProbe"]
    return float(probe["periodSeconds"] * probe["failureThreshold"])


def _get(url: str, timeout: float = 2.0) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError):
        return 0


def container_log(container_id: str) -> str:
    try:
        return podman("logs", "--tail", "60", container_id)
    except PodmanError as exc:
        return str(exc)


def _container_id(play_output: str) -> str:
    lines = [ln.strip() for ln in play_output.splitlines()]
    ids = [lines[i + 1] for i, ln in enumerate(lines[:-1]) if ln.startswith("Container")]
    if not ids:
        raise RehearsalError(f"podman kube play started no container:\n{play_output}")
    return ids[0]


def play(version: int, image: BuiltImage) -> PodRun:
    """Run the version's rendered Deployment; return once `/readyz` answers 200, or raise with the log."""
    deployment = rendered_deployment(version, image)
    budget = startup_budget(deployment)
    port = rehearsal_port()
    access, secret = s3.credentials()
    s3_env = {**s3.client_env(), "AWS_ACCESS_KEY_ID": access, "AWS_SECRET_ACCESS_KEY": secret}
    user = contracts.REGISTRY_MODEL_SERVER
    registry_env = {contracts.MLFLOW_USERNAME_VAR: user, contracts.MLFLOW_PASSWORD_VAR: registry_auth.password(user)}
    manifest, changes = for_this_machine(deployment, port=port, s3_env=s3_env, registry_env=registry_env)
    kube_file = sub("rehearsal") / f"{manifest['metadata']['name']}.yaml"
    write_private(kube_file, yaml.safe_dump(manifest, sort_keys=False))  # it holds keys: 0600, atomically
    down(kube_file)
    started = time.monotonic()
    cid = _container_id(podman("kube", "play", str(kube_file)))
    url = f"http://{endpoints.HOST}:{port}"
    while _get(f"{url}/readyz") != 200:
        waited = time.monotonic() - started
        state = podman("inspect", "--format", "{{.State.Status}} {{.RestartCount}}", cid).split()
        if waited > budget or state[0] == "exited" or int(state[1]) > 0:
            log = container_log(cid)
            down(kube_file)
            raise RehearsalError(
                f"v{version}'s pod not ready after {waited:.0f}s (budget {budget:.0f}s, state {state}):\n{log}"
            )
        time.sleep(0.5)
    return PodRun(kube_file, cid, url, time.monotonic() - started, budget, changes)


def down(kube_file: Path) -> None:
    with contextlib.suppress(PodmanError):  # nothing was running
        podman("kube", "down", str(kube_file))


def classify(url: str, texts: list[str]) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{url}/classify", data=json.dumps({"texts": texts}).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as resp:
        result: dict[str, Any] = json.loads(resp.read())
    return result
