"""A `rag` model's pods in the cluster: where they call the models and the index its versions pin, and the network
paths for exactly those calls (docs/serving-cluster.md, "The embed and rag models").

A RAG server calls the servers of its embedder and its generator (the policy's `rag.embedder_model` and
`rag.generator_model`, as the model sees the policy) over HTTP, and keeps its index in the Qdrant server the add-on
stack installs (modules/qdrant.py). Its pods get, beside every model server's variables:

- `MLP_EMBEDDER_URL`/`MLP_GENERATOR_URL`: the KEDA HTTP interceptor's proxy, with `MLP_EMBEDDER_HOST`/
  `MLP_GENERATOR_HOST` as the Host header it routes by (each target's InterceptorRoute, scaling.py). A target that is
  non-critical scales to zero, and only the interceptor wakes it; a critical target is refused: in the cluster it has
  no Service that is not one version's (deployments mode) or one release phase's (rollout mode), so nothing here
  could name it without knowing which version the RAG version pins.
- `MLP_QDRANT_URL`: the Qdrant server's Service; `MLP_QDRANT_API_KEY` by `secretKeyRef` to the Secret External
  Secrets copies into the serving namespace (never a value in a manifest).

Egress beyond a model server's (MLflow, HTTPS): the interceptor's pods on its proxy port and Qdrant's pods on its
HTTP port. The pods carry `mlp.io/rag: server`, by which the KEDA and Qdrant namespaces admit them
(modules/k8s/platform.py). The RAG server loads its version's index into Qdrant itself when it starts
(services/rag_server/loading.py), so it holds the read-write key. A job that loads indexes (none yet) would run in the
serving namespace labelled `mlp.io/rag: ingest`; its policy is rendered here already: it reaches Qdrant and MLflow
only, and Qdrant and MLflow admit it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

from core import env as env_vars
from core.policy import Policy
from modules import cluster_services as cs
from modules.k8s import common as c
from modules.k8s import netpol as np
from modules.k8s import network, scaling
from modules.k8s.props import GatewayProps, ServingProps

POD_KINDS = ("Deployment", "Rollout")
INGEST_POLICY = "rag-ingest"


def targets(policy: Policy, model_name: str) -> dict[str, str]:
    """Role -> the catalogue model a `rag` model calls in that role (the policy's `rag` section, as it sees it)."""
    r = policy.for_model(model_name).rag
    return {"embedder": r.embedder_model, "generator": r.generator_model}


def upstream(policy: Policy, model_name: str, target: str, hostname: str) -> tuple[str, str]:
    """(URL, Host header) by which `model_name`'s pods call the catalogue model `target`."""
    if policy.model(target).critical:
        raise ValueError(
            f"{model_name} calls {target}, which is critical: in the cluster a RAG server reaches the models it calls "
            f"through the KEDA HTTP interceptor, which needs them non-critical (scaled to zero, one live version); "
            f"a critical model's Services are per version. Make {target} non-critical in policy.yaml models "
            "(docs/serving-cluster.md, The embed and rag models)"
        )
    return scaling.interceptor_url(), scaling.interceptor_host(target, hostname)


def client_env(policy: Policy, model_name: str, hostname: str) -> list[dict[str, Any]]:
    """The variables a `rag` model's server reads besides every model server's (core/env.py)."""
    t = targets(policy, model_name)
    embed_url, embed_host = upstream(policy, model_name, t["embedder"], hostname)
    generate_url, generate_host = upstream(policy, model_name, t["generator"], hostname)
    plain = {
        env_vars.EMBEDDER_URL.name: embed_url,
        env_vars.EMBEDDER_HOST.name: embed_host,
        env_vars.GENERATOR_URL.name: generate_url,
        env_vars.GENERATOR_HOST.name: generate_host,
        env_vars.QDRANT_URL.name: cs.qdrant_url(),
    }
    key = {"secretKeyRef": {"name": cs.QDRANT_API_KEY_SECRET, "key": cs.QDRANT_API_KEY_SECRET_KEY}}
    return [
        *({"name": k, "value": v} for k, v in plain.items()),
        {"name": env_vars.QDRANT_API_KEY.name, "valueFrom": key},
    ]


def _to_interceptor() -> dict[str, Any]:
    return np.rule([np.pods(cs.KEDA_NAMESPACE, cs.KEDA_INTERCEPTOR_PODS)], np.tcp(cs.KEDA_INTERCEPTOR_PORT))


def _to_qdrant() -> dict[str, Any]:
    return np.rule([np.pods(cs.QDRANT_NAMESPACE, cs.QDRANT_PODS)], np.tcp(cs.QDRANT_HTTP_PORT))


def server_policy(s: ServingProps, model_name: str) -> c.Manifest:
    """Egress of a `rag` model's servers beyond a model server's own policy (NetworkPolicies add up)."""
    return np.policy(
        f"{model_name}-calls",
        s.namespace,
        network.serving_pods(model_name),
        egress=[_to_interceptor(), _to_qdrant()],
        labels=c.labels(model_name),
    )


def ingest_policy(s: ServingProps) -> c.Manifest:
    """The index-loading job's pods: nothing calls them; they read the version from MLflow and write Qdrant."""
    mlflow = np.rule([np.pods(cs.MLFLOW_NAMESPACE, cs.MLFLOW_PODS)], np.tcp(cs.MLFLOW_PORT))
    labels = c.platform_labels("rag-ingest")
    return np.policy(
        INGEST_POLICY, s.namespace, dict(cs.RAG_INGEST_PODS), ingress=[], egress=[mlflow, _to_qdrant()], labels=labels
    )


def _pod_templates(out: dict[str, list[c.Manifest]], model_name: str) -> Iterator[dict[str, Any]]:
    for manifests in out.values():
        for m in manifests:
            if m["kind"] in POD_KINDS and m["metadata"]["labels"].get("app.kubernetes.io/name") == model_name:
                yield m["spec"]["template"]


def attach(out: dict[str, list[c.Manifest]], policy: Policy, model_name: str, s: ServingProps, g: GatewayProps) -> None:
    """Make the pods `render_all` wrote for a `rag` model RAG servers: their variables and label on every pod
    template of the model (Deployments or the Rollout), and their egress and the ingest job's policy beside the
    namespace's other policies."""
    env = client_env(policy, model_name, g.hostname)
    templates = list(_pod_templates(out, model_name))
    if not templates:
        raise ValueError(f"no pod template of {model_name} in the render")  # a new workload kind not handled here
    for template in templates:
        template["metadata"]["labels"].update(cs.RAG_SERVER_PODS)
        (server,) = [ct for ct in template["spec"]["containers"] if ct["name"] == "model-server"]
        server["env"] += copy.deepcopy(env)  # no object shared between pods (YAML would write anchors)
    out["namespace"] += [server_policy(s, model_name), ingest_policy(s)]
