"""Every change the rehearsal makes to a rendered object, each with its reason. Nothing else is edited: the
securityContext, env, volumes, probes, resources and command are the rendered ones."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core import env

Manifest = dict[str, Any]


@dataclass(frozen=True)
class Change:
    what: str
    why: str


# (Secret name, key) -> value: what the cluster's Secrets hold, for the `secretKeyRef`s a rendered pod names.
SecretValues = Mapping[tuple[str, str], str]
SECRETS_INLINE = Change("secretKeyRef and configMapKeyRef values inline", "a local secret stands in for the Secret "
                        "that External Secrets fills from Secrets Manager, the local artifact public key for the "
                        "ConfigMap holding KMS's; podman kube play reads no Kubernetes Secret")  # fmt: skip


def _inline_secrets(container: dict[str, Any], secrets: SecretValues) -> None:
    """Replace each `secretKeyRef` (and `configMapKeyRef`: the artifact public key) by the local value."""
    for variable in container.get("env", []):
        source = variable.get("valueFrom", {})
        ref = source.get("secretKeyRef") or source.get("configMapKeyRef")
        if ref is not None:
            variable.pop("valueFrom")
            variable["value"] = secrets[(ref["name"], ref["key"])]


def for_this_machine(
    deployment: Manifest, *, port: int, s3_env: dict[str, str], secrets: SecretValues
) -> tuple[Manifest, list[Change]]:
    """The rendered Deployment as the rehearsal runs it, and the list of what differs and why."""
    out = copy.deepcopy(deployment)
    pod = out["spec"]["template"]["spec"]
    changes: list[Change] = []

    out["metadata"]["name"] = f"{out['metadata']['name']}-p{port}"
    changes.append(Change(f"name suffixed with -p{port}", "one podman serves the whole machine: the pods of two local "
                          f"environments ({env.PORT_OFFSET.name}) must not share a name"))  # fmt: skip
    out["spec"]["replicas"] = 1
    changes.append(Change("replicas: 1", "podman kube play runs one pod; on the host network a second one would "
                          "need the same port"))  # fmt: skip
    pod["hostNetwork"] = True
    changes.append(Change("hostNetwork: true", "the pod reaches the local MLflow and S3 on loopback, where the "
                          "cluster's pods reach theirs by service DNS"))  # fmt: skip
    for container in pod["containers"]:
        container.pop("ports", None)
        container["env"].append({"name": "BENTOML_PORT", "value": str(port)})
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            if "httpGet" in container.get(probe, {}):
                container[probe]["httpGet"]["port"] = port
        container["env"] += [{"name": k, "value": v} for k, v in sorted(s3_env.items())]
        _inline_secrets(container, secrets)
        container["imagePullPolicy"] = "Never"
    changes.append(Change("container ports dropped", "podman refuses port mappings on the host network"))
    changes.append(Change(f"BENTOML_PORT={port}, probes on port {port}", "the host network shares the machine's "
                          "ports: the server takes a free one of the rehearsal instead of 3000"))  # fmt: skip
    changes.append(Change("AWS keys and the S3 endpoint of the local S3 API in env", "they stand in for the IRSA "
                          "role and AWS's S3 endpoint"))  # fmt: skip
    changes.append(SECRETS_INLINE)
    changes.append(Change("imagePullPolicy: Never", "the image was built on this machine; no registry is reachable"))
    return out, changes


def rag_server_for_this_machine(
    deployment: Manifest, *, embedder_url: str, generator_url: str
) -> tuple[Manifest, list[Change]]:
    """A RAG model's rendered Deployment with its calls pointed at this machine (before `for_this_machine`): the
    embedder's and the generator's local servers, and the embedded Qdrant engine instead of the Qdrant server."""
    out = copy.deepcopy(deployment)
    dropped = {env.QDRANT_URL.name, env.QDRANT_API_KEY.name, env.EMBEDDER_HOST.name, env.GENERATOR_HOST.name}
    local = {env.EMBEDDER_URL.name: embedder_url, env.GENERATOR_URL.name: generator_url}
    for container in out["spec"]["template"]["spec"]["containers"]:
        kept = [e for e in container["env"] if e["name"] not in dropped]
        container["env"] = [{**e, "value": local[e["name"]]} if e["name"] in local else e for e in kept]
    return out, [
        Change(f"{env.EMBEDDER_URL.name} and {env.GENERATOR_URL.name}: the local servers; their Host headers dropped",
               "the KEDA interceptor that routes by Host is the cluster's; here the servers listen on loopback"),
        Change(f"{env.QDRANT_URL.name} and {env.QDRANT_API_KEY.name} dropped: the embedded Qdrant engine",
               "no Qdrant server runs here (its chart needs a cluster); the server's client is tested on the same "
               "interface (tests/services/model_runtime/test_vector_store.py)"),
    ]  # fmt: skip


def drift_job_for_this_machine(
    cronjob: Manifest, *, suffix: str, s3_env: dict[str, str], args: list[str], secrets: SecretValues
) -> tuple[Manifest, list[Change]]:
    """The CronJob's job template as the Pod the rehearsal runs once, and what differs and why."""
    job = cronjob["spec"]["jobTemplate"]["spec"]
    pod_spec = copy.deepcopy(job["template"]["spec"])
    meta = copy.deepcopy(job["template"]["metadata"])
    meta["name"] = f"{cronjob['metadata']['name']}-{suffix}"
    changes = [
        Change("the job template run once as a Pod", "podman kube play runs Pods and Deployments, not CronJobs; the "
               "schedule and the Job's retries are the cluster's controllers' (rendered and schema-checked)"),
    ]  # fmt: skip
    pod_spec["hostNetwork"] = True
    changes.append(Change("hostNetwork: true", "the pod reaches the local MLflow, S3 and Pushgateway on loopback"))
    for container in pod_spec["containers"]:
        container["env"] += [{"name": k, "value": v} for k, v in sorted(s3_env.items())]
        _inline_secrets(container, secrets)
        container["imagePullPolicy"] = "Never"
        container["args"] = list(args)
    changes.append(SECRETS_INLINE)
    changes.append(Change("AWS keys and the S3 endpoint of the local S3 API in env", "they stand in for the IRSA "
                          "role and AWS's S3 endpoint"))  # fmt: skip
    changes.append(Change("imagePullPolicy: Never", "the image was built on this machine; no registry is reachable"))
    changes.append(Change(f"args {' '.join(args)}", "the rendered job checks the champion over the policy's window; "
                          "the rehearsal names the version its model-server pod served and the start of the traffic "
                          "it sent, since other tests' traffic to that version lies in the same window"))  # fmt: skip
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": pod_spec}
    return pod, changes


def shadow_compare_for_this_machine(
    template: Manifest, *, suffix: str, s3_env: dict[str, str], args: Mapping[str, str]
) -> tuple[Manifest, list[Change]]:
    """The comparison AnalysisTemplate's Job as the Pod the rehearsal runs once, its `{{args.*}}` bound as Argo
    binds them from the Rollout's step, and what differs and why."""
    (metric,) = template["spec"]["metrics"]
    job = metric["provider"]["job"]
    pod_spec = copy.deepcopy(job["spec"]["template"]["spec"])
    meta = copy.deepcopy(job["spec"]["template"]["metadata"])
    meta["name"] = f"{template['metadata']['name']}-{suffix}"
    changes = [
        Change("the analysis Job run once as a Pod", "podman kube play runs Pods, not Jobs, and no Argo controller "
               "runs here; the Job's retries and deadline are the cluster's (rendered and schema-checked)"),
        Change("{{args.*}} bound: " + ", ".join(f"{k}={v}" for k, v in args.items()), "what Argo substitutes from "
               "the Rollout step's args: the versions this rehearsal served and the window of its traffic"),
    ]  # fmt: skip
    pod_spec["hostNetwork"] = True
    changes.append(Change("hostNetwork: true", "the pod reaches the local S3 and Pushgateway on loopback"))
    for container in pod_spec["containers"]:
        for name, value in args.items():
            container["args"] = [a.replace("{{args.%s}}" % name, value) for a in container["args"]]  # noqa: UP031
        container["env"] += [{"name": k, "value": v} for k, v in sorted(s3_env.items())]
        container["imagePullPolicy"] = "Never"
    changes.append(Change("AWS keys and the S3 endpoint of the local S3 API in env", "they stand in for the IRSA "
                          "role and AWS's S3 endpoint"))  # fmt: skip
    changes.append(Change("imagePullPolicy: Never", "the image was built on this machine; no registry is reachable"))
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": pod_spec}
    return pod, changes


def webhook_receiver_for_this_machine(
    deployment: Manifest, *, port: int, secrets: SecretValues, github_api_url: str
) -> tuple[Manifest, list[Change]]:
    """The receiver's rendered Deployment as the rehearsal runs it, and what differs and why."""
    out = copy.deepcopy(deployment)
    pod = out["spec"]["template"]["spec"]
    out["metadata"]["name"] = f"{out['metadata']['name']}-p{port}"
    pod["hostNetwork"] = True
    changes = [
        Change(f"name suffixed with -p{port}", "the pods of two local environments must not share a name"),
        Change("hostNetwork: true", "MLflow calls the receiver on loopback, as the cluster's MLflow calls its Service"),
    ]
    for container in pod["containers"]:
        container.pop("ports", None)
        container["imagePullPolicy"] = "Never"
        args = container["args"]
        args[args.index("--port") + 1] = str(port)
        for probe in ("readinessProbe", "livenessProbe"):
            container[probe]["httpGet"]["port"] = port
        _inline_secrets(container, secrets)
        container["env"].append({"name": env.GITHUB_API_URL.name, "value": github_api_url})
    changes += [
        Change("container ports dropped", "podman refuses port mappings on the host network"),
        Change(f"--port {port}, probes on port {port}", "the host network shares the machine's ports"),
        Change("imagePullPolicy: Never", "the image was built on this machine; no registry is reachable"),
        Change(
            "secretKeyRef values inline",
            "a throwaway secret of the test stands in for the Secret that External Secrets fills from Secrets Manager",
        ),
        Change(
            f"{env.GITHUB_API_URL.name}={github_api_url}",
            "a recorder on loopback stands in for GitHub's API, which is unreachable from here",
        ),
    ]
    return out, changes


def retrain_job_for_this_machine(
    job: Manifest, *, suffix: str, secrets: SecretValues, signing_key_file: Path
) -> tuple[Manifest, list[Change]]:
    """The retraining Job's pod as the rehearsal runs it once, and what differs and why."""
    pod_spec = copy.deepcopy(job["spec"]["template"]["spec"])
    meta = copy.deepcopy(job["spec"]["template"]["metadata"])
    meta["name"] = f"{job['metadata']['name']}-{suffix}"
    changes = [
        Change("the Job's pod run once as a Pod", "podman kube play runs Pods and Deployments, not Jobs; backoffLimit "
               "and activeDeadlineSeconds are the Job controller's (rendered and schema-checked; the rehearsal "
               "enforces the deadline itself)"),
        Change("hostNetwork: true", "the pod reaches the local MLflow on loopback"),
        SECRETS_INLINE,
        Change("imagePullPolicy: Never", "the image was built on this machine; no registry is reachable"),
    ]  # fmt: skip
    pod_spec["hostNetwork"] = True
    pod_spec["volumes"].append(
        {"name": "signing-key", "hostPath": {"path": str(signing_key_file.parent), "type": "Directory"}}
    )
    for container in pod_spec["containers"]:
        _inline_secrets(container, secrets)
        container["imagePullPolicy"] = "Never"
        container["env"] = [e for e in container["env"] if e["name"] != env.ARTIFACT_SIGNING_KMS_KEY.name]
        container["env"].append({"name": env.ARTIFACT_SIGNING_KEY_FILE.name, "value": f"/keys/{signing_key_file.name}"})
        container["volumeMounts"].append({"name": "signing-key", "mountPath": "/keys", "readOnly": True})
        container["args"] = [a for a in container["args"] if a != "--candidate"]
    changes += [
        Change(f"{env.ARTIFACT_SIGNING_KMS_KEY.name} -> {env.ARTIFACT_SIGNING_KEY_FILE.name} (hostPath, read-only)",
               "no KMS here: the local signing key, whose public half the local environment verifies with, stands "
               "in for the KMS key the release runner's IRSA role may sign with"),
        Change("--candidate dropped", "the candidate alias would start a local release of the new version; the "
               "release of a retrained version is tested by tests/integration/test_retrain.py"),
    ]  # fmt: skip
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": pod_spec}, changes
