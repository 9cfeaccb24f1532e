"""A model's server Deployment, rendered for one live version and run with `podman kube play`: a classifier's
(ONNX or GGUF version), a generate model's or a RAG model's, all on the CPU model-server image.

Inputs of the renderer (not edits): the image built here, the local MLflow as the tracking URI and the local
inference-log bucket. The edits are
`changes.for_this_machine`. Readiness is checked from the host, as the kubelet probes a host-network pod: the
container must answer the startupProbe's path within its budget (period x failureThreshold).
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core import contracts, endpoints
from core.policy import policy
from infra.containers.images import BuiltImage
from infra.local import registry_auth, s3
from infra.local.secrets import artifact_public_key
from modules.k8s import RenderProps, ServingProps, render_all
from modules.k8s import common as k8s_common
from pipelines.rehearsal import pods
from pipelines.rehearsal.changes import Change, Manifest, SecretValues, for_this_machine

EXAMPLE_ROLE_ARN = "arn:aws:iam::123456789012:role/mlp-model-server"  # rendered into the ServiceAccount only


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


def render_props(version: int, image: BuiltImage, model_name: str | None = None, **extra: Any) -> RenderProps:
    """The renderer's inputs for this machine: the image built here, the local MLflow and inference-log bucket;
    the catalogue model `model_name` (default: the policy's default model)."""
    repository, tag = image.ref.rsplit(":", 1)
    return RenderProps(
        model_name=model_name or policy().release.default_model,
        weights={version: 100},
        serving=ServingProps(
            image_repository=repository,
            image_tag=tag,
            irsa_role_arn=EXAMPLE_ROLE_ARN,
            mlflow_tracking_uri=endpoints.mlflow_url(),
            inference_log_bucket=contracts.INFERENCE_LOG_BUCKET,
        ),
        **extra,
    )


def rendered_deployment(version: int, image: BuiltImage, model_name: str | None = None) -> Manifest:
    rendered = render_all(render_props(version, image, model_name))["serving"]
    (deployment,) = [m for m in rendered if m["kind"] == "Deployment"]
    return deployment


def registry_secrets(user: str) -> SecretValues:
    """The value of the Secret a rendered pod reads its registry password from: the local registry user's; and of
    the ConfigMap holding the artifact public key: the local signing key's public half."""
    return {
        (k8s_common.registry_secret_name(user), k8s_common.REGISTRY_PASSWORD_KEY): registry_auth.password(user),
        (contracts.ARTIFACT_KEY_CONFIGMAP, contracts.ARTIFACT_KEY_CONFIGMAP_KEY): artifact_public_key(),
    }


def s3_env() -> dict[str, str]:
    """The local S3 API's endpoint and keys: what IRSA and AWS's endpoint give a pod in the cluster."""
    access, secret = s3.credentials()
    return {**s3.client_env(), "AWS_ACCESS_KEY_ID": access, "AWS_SECRET_ACCESS_KEY": secret}


def startup_budget(deployment: Manifest) -> float:
    probe = deployment["spec"]["template"]["spec"]["containers"][0]["startupProbe"]
    return float(probe["periodSeconds"] * probe["failureThreshold"])


Adapt = Callable[[Manifest], tuple[Manifest, list[Change]]]


def play(version: int, image: BuiltImage, model_name: str | None = None, adapt: Adapt | None = None) -> PodRun:
    """Run the version's rendered Deployment (first changed by `adapt`, a model's own edits for this machine);
    return once `/readyz` answers 200, or raise with the log."""
    deployment = rendered_deployment(version, image, model_name)
    own: list[Change] = []
    if adapt is not None:
        deployment, own = adapt(deployment)
    budget = startup_budget(deployment)
    port = rehearsal_port()
    secrets = registry_secrets(contracts.REGISTRY_MODEL_SERVER)
    manifest, changes = for_this_machine(deployment, port=port, s3_env=s3_env(), secrets=secrets)
    url = f"http://{endpoints.HOST}:{port}"
    path = pods.kube_file(manifest)
    pods.down(path)  # a leftover of this same object, from an interrupted run
    if pods.http_status(f"{url}/readyz") != 0:  # its probes would be answered by whatever holds the port
        raise pods.RehearsalError(f"port {port} already answers: stop the pod on it first (`podman pod ps`)")
    started = time.monotonic()
    cid = pods.play(path)
    try:
        ready = pods.wait_ready(cid, f"{url}/readyz", budget, started)
    except pods.RehearsalError as exc:
        pods.down(path)
        raise pods.RehearsalError(f"{deployment['metadata']['name']}'s pod: {exc}") from exc
    return PodRun(path, cid, url, ready, budget, [*own, *changes])


def _post(url: str, body: dict[str, Any], timeout: float) -> dict[str, Any]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as resp:
        result: dict[str, Any] = json.loads(resp.read())
    return result


def classify(url: str, texts: list[str]) -> dict[str, Any]:
    return _post(f"{url}{contracts.server_route('classify')}", {"texts": texts}, timeout=30)


def ask(url: str, question: str) -> dict[str, Any]:
    return _post(f"{url}{contracts.server_route('rag')}", {"question": question}, 60)


def generate(url: str, prompt: str, max_tokens: int) -> dict[str, Any]:
    return _post(f"{url}{contracts.server_route('generate')}", {"prompt": prompt, "max_tokens": max_tokens}, 120)
