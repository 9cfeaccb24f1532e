"""Model server workloads: one Deployment (or the pod template of a Rollout) per model version, its Service, PDB,
ServiceAccount (IRSA) and the PodMonitor that scrapes it with the same `model_name`/`model_version` labels as local.
"""

from __future__ import annotations

from typing import Any

from core import contracts, promql
from core import env as env_vars
from core.policy import Policy
from modules.k8s import common as c
from modules.k8s.props import ServingProps
from modules.k8s.versions import MONITORING_API

MODEL_CACHE = "/var/cache/mlp-models"
SERVICE_ACCOUNT = "model-server"
GPU_RESOURCE = "nvidia.com/gpu"
# Node labels of the node groups (infra/config/<env>.yaml node_groups[].labels).
CPU_NODE_SELECTOR = {"mlp.io/pool": "cpu-inference"}
GPU_NODE_SELECTOR = {"mlp.io/pool": "gpu-inference", "nvidia.com/gpu.present": "true"}
# GPU feature discovery labels every GPU node with its framebuffer size in MiB: the only schedulable handle on GPU
# memory without GPU sharing, so the policy's GPU memory request becomes a node-affinity floor.
GPU_MEMORY_NODE_LABEL = "nvidia.com/gpu.memory"


def quantity_mib(quantity: str) -> int:
    """`2Gi` -> 2048; supports the binary suffixes the policy uses."""
    units = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024, "Ti": 1024 * 1024}
    for suffix, factor in units.items():
        if quantity.endswith(suffix):
            return int(float(quantity[: -len(suffix)]) * factor)
    raise ValueError(f"{quantity!r}: use a binary quantity such as 512Mi or 2Gi")


def service_account(props: ServingProps, model_name: str) -> c.Manifest:
    # Shared by every catalogue model's servers (one IRSA role): its labels name no model.
    meta = c.metadata(
        SERVICE_ACCOUNT,
        props.namespace,
        c.platform_labels("model-server"),
        annotations={"eks.amazonaws.com/role-arn": props.irsa_role_arn},
    )
    # The IRSA webhook mounts its own projected web-identity token, so the API token stays unmounted.
    return c.manifest("v1", "ServiceAccount", meta, automountServiceAccountToken=False)


def _resources(policy: Policy, gpu: bool) -> dict[str, Any]:
    s = policy.serving
    requests: dict[str, Any] = {"cpu": s.cpu_request, "memory": s.memory_request}
    limits: dict[str, Any] = {"cpu": s.cpu_limit, "memory": s.memory_limit}
    if gpu:
        # Extended resources: request must equal limit. One `nvidia.com/gpu` is one time slice: the device plugin
        # advertises each GPU `cluster.gpu_time_slicing_replicas` times, and each pod caps its GPU memory
        # (MLP_GPU_MEMORY_LIMIT_BYTES) so that many fit one card (tests/infra/test_gpu_scheduling.py).
        requests[GPU_RESOURCE] = 1
        limits[GPU_RESOURCE] = 1
    return {"requests": requests, "limits": limits}


def _probe(path: str, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": c.HTTP_PORT_NAME},
        "periodSeconds": period,
        "timeoutSeconds": 2,
        "failureThreshold": failures,
    }


# The servers that write the inference log: a classifier's (drift reads it) and a RAG model's (its questions, answers
# and citations: services/rag_server/service.py).
LOGGING_TASKS = ("classify", "rag")


def _env(props: ServingProps, policy: Policy, model_name: str, version: int) -> list[dict[str, Any]]:
    env = {
        env_vars.MODEL_NAME.name: model_name,
        env_vars.MODEL_VERSION.name: str(version),
        "MLFLOW_TRACKING_URI": props.mlflow_tracking_uri,
        env_vars.MODEL_CACHE.name: MODEL_CACHE,
        "HF_HUB_OFFLINE": "1",
        "TMPDIR": "/tmp",
        "HOME": "/tmp",
        "BENTOML_HOME": "/tmp/bentoml",
    }
    task = policy.model(model_name).task
    if task in LOGGING_TASKS:
        env[env_vars.INFERENCE_LOG_BUCKET.name] = props.inference_log_bucket
    if task == "classify":  # a classifier's server picks its device
        env[env_vars.DEVICE.name] = "cuda" if props.gpu else "cpu"
    if props.gpu:
        env[env_vars.GPU_MEMORY_LIMIT_BYTES.name] = str(quantity_mib(policy.serving.gpu_memory_limit) * 1024 * 1024)
    rendered = [{"name": k, "value": v} for k, v in env.items()]
    return [*rendered, c.artifact_key_env(), *c.registry_credential_env(contracts.REGISTRY_MODEL_SERVER)]


def container(props: ServingProps, policy: Policy, model_name: str, version: int) -> dict[str, Any]:
    return {
        "name": "model-server",
        "image": props.image,
        "imagePullPolicy": "Always",
        # One image serves every task (services/model_server/Containerfile): the task picks the service it runs.
        "command": ["bentoml", "serve", contracts.service_ref(policy.model(model_name).task)],
        "ports": [{"name": c.HTTP_PORT_NAME, "containerPort": c.HTTP_PORT, "protocol": "TCP"}],
        "env": _env(props, policy, model_name, version),
        "resources": _resources(policy, props.gpu),
        # Startup covers the model download from the registry; readiness gates traffic; liveness restarts a hang.
        "startupProbe": _probe("/readyz", period=5, failures=60),
        "readinessProbe": _probe("/readyz", period=5, failures=3),
        "livenessProbe": _probe("/livez", period=10, failures=3),
        # Keep serving while the endpoint removal propagates to the gateway, then stop.
        "lifecycle": {"preStop": {"sleep": {"seconds": min(policy.canary.drain_grace_seconds, 15)}}},
        "securityContext": c.container_security(),
        "volumeMounts": [
            {"name": "tmp", "mountPath": "/tmp"},
            {"name": "model-cache", "mountPath": MODEL_CACHE},
        ],
    }


def _gpu_scheduling(policy: Policy) -> dict[str, Any]:
    floor_mib = quantity_mib(policy.serving.gpu_memory_request)
    return {
        "nodeSelector": dict(GPU_NODE_SELECTOR),
        "tolerations": [{"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}],
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                # Gt is strict: a node with exactly the requested MiB qualifies.
                                {"key": GPU_MEMORY_NODE_LABEL, "operator": "Gt", "values": [str(floor_mib - 1)]}
                            ]
                        }
                    ]
                }
            }
        },
    }


def pod_template(props: ServingProps, policy: Policy, model_name: str, version: int) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "serviceAccountName": SERVICE_ACCOUNT,
        "automountServiceAccountToken": False,
        "terminationGracePeriodSeconds": policy.canary.drain_grace_seconds + 15,
        "securityContext": c.pod_security(),
        "containers": [container(props, policy, model_name, version)],
        "volumes": [
            {"name": "tmp", "emptyDir": {"sizeLimit": props.tmp_size_limit}},
            {"name": "model-cache", "emptyDir": {"sizeLimit": props.model_cache_size_limit}},
        ],
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": "topology.kubernetes.io/zone",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": c.selector_labels(model_name, version)},
            }
        ],
    }
    if props.gpu:
        spec.update(_gpu_scheduling(policy))
    else:
        spec["nodeSelector"] = dict(CPU_NODE_SELECTOR)
    return {"metadata": {"labels": c.labels(model_name, version)}, "spec": spec}


def deployment(props: ServingProps, policy: Policy, model_name: str, version: int) -> c.Manifest:
    name = c.version_name(model_name, version)
    meta = c.metadata(name, props.namespace, c.labels(model_name, version))
    return c.manifest(
        "apps/v1",
        "Deployment",
        meta,
        spec={
            # No `replicas`: KEDA's ScaledObject owns the count (modules/k8s/render.py on server-side apply).
            "revisionHistoryLimit": 3,
            "selector": {"matchLabels": c.selector_labels(model_name, version)},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": pod_template(props, policy, model_name, version),
        },
    )


def service(props: ServingProps, model_name: str, name: str, selector: dict[str, str]) -> c.Manifest:
    meta = c.metadata(name, props.namespace, c.labels(model_name))
    return c.manifest(
        "v1",
        "Service",
        meta,
        spec={
            "type": "ClusterIP",
            "selector": dict(selector),
            "ports": [
                {"name": c.HTTP_PORT_NAME, "port": c.HTTP_PORT, "targetPort": c.HTTP_PORT_NAME, "protocol": "TCP"}
            ],
        },
    )


def version_service(props: ServingProps, model_name: str, version: int) -> c.Manifest:
    return service(props, model_name, c.version_name(model_name, version), c.selector_labels(model_name, version))


def pod_disruption_budget(props: ServingProps, model_name: str, name: str, selector: dict[str, str]) -> c.Manifest:
    meta = c.metadata(name, props.namespace, c.labels(model_name))
    # One pod at a time may be evicted (node drains, upgrades); with min_replicas >= 2 one always serves.
    return c.manifest(
        "policy/v1",
        "PodDisruptionBudget",
        meta,
        spec={"maxUnavailable": 1, "selector": {"matchLabels": dict(selector)}},
    )


def pod_monitor(props: ServingProps, model_name: str, release_label: str) -> c.Manifest:
    meta = c.metadata(model_name, props.namespace, {**c.labels(model_name), "release": release_label})
    relabel = [
        {
            "sourceLabels": [f"__meta_kubernetes_pod_label_{label}"],
            "targetLabel": label,
            "action": "replace",
        }
        for label in ("model_name", "model_version")
    ]
    # Same job name as the local file_sd targets, so rules and dashboards select `job="model-server"` everywhere.
    relabel.append({"targetLabel": "job", "replacement": promql.MODEL_SERVER_JOB, "action": "replace"})
    return c.manifest(
        MONITORING_API,
        "PodMonitor",
        meta,
        spec={
            "selector": {
                "matchLabels": {
                    "app.kubernetes.io/name": model_name,
                    "app.kubernetes.io/component": "model-server",
                }
            },
            "namespaceSelector": {"matchNames": [props.namespace]},
            "podMetricsEndpoints": [
                {
                    "port": c.HTTP_PORT_NAME,
                    "path": "/metrics",
                    "interval": "15s",
                    # BentoML's own `endpoint` label ("/classify") must win over the operator's target label
                    # `endpoint` (the port name): every canary query selects endpoint="/classify".
                    "honorLabels": True,
                    "relabelings": relabel,
                }
            ],
        },
    )


def serving_manifests(props: ServingProps, policy: Policy, model_name: str, versions: list[int]) -> list[c.Manifest]:
    """Deployment mode: one Deployment, Service and PDB per live version."""
    out: list[c.Manifest] = []
    for v in versions:
        out.append(deployment(props, policy, model_name, v))
        out.append(version_service(props, model_name, v))
        name = c.version_name(model_name, v)
        out.append(pod_disruption_budget(props, model_name, name, c.selector_labels(model_name, v)))
    return out
