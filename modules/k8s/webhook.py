"""The registry-webhook receiver in the cluster: MLflow's webhook calls it when an alias is set, and it dispatches
the release workflow (`repository_dispatch`, `MLP_WEBHOOK_DISPATCH=github`); Alertmanager delivers the alerts the
platform acts on (drift), and it dispatches the retraining workflow.

One replica (`Recreate`): its delivery ledger is a SQLite file in an `emptyDir`, so two replicas would each accept
a replayed delivery. A restart empties the ledger; the release workflow's concurrency group then keeps a replay
inside the skew window from running a second release at the same time (docs/serving-cluster.md).
"""

from __future__ import annotations

from typing import Any

from core import contracts, env, images
from core.promql import SERVING_NAMESPACE
from modules.cluster_services import MONITORING_NAMESPACE
from modules.k8s import common as c
from modules.k8s.props import ServingProps, WebhookProps

NAME = "mlp-webhook-receiver"
COMPONENT = "webhook-receiver"
CONTAINER_PORT = 8080
SERVICE_PORT = 80
STATE_DIR = "/var/lib/webhook"
# Keys of the receiver's Secret (filled from Secrets Manager): never in a manifest, only referenced.
SECRET_KEY_WEBHOOK = "webhook-secret"
SECRET_KEY_GITHUB = "github-token"
# The bearer token Alertmanager presents: the same value as the `act-webhook-token` of Alertmanager's receivers
# secret (modules/alerting.py); the operator sets both (runbooks/alerts-not-delivered.md).
SECRET_KEY_ALERTMANAGER = "alertmanager-token"
ALERTMANAGER_POD_LABELS = {"app.kubernetes.io/name": "alertmanager"}  # kube-prometheus-stack's Alertmanager pods


def _labels() -> dict[str, str]:
    return {
        "app.kubernetes.io/name": NAME,
        "app.kubernetes.io/component": COMPONENT,
        "app.kubernetes.io/part-of": c.PART_OF,
        "app.kubernetes.io/managed-by": c.MANAGED_BY,
    }


def _selector() -> dict[str, str]:
    return {"app.kubernetes.io/name": NAME}


def _secret_env(name: str, secret: str, key: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def container(serving: ServingProps, props: WebhookProps) -> dict[str, Any]:
    probe = {
        "httpGet": {"path": contracts.HEALTH_ROUTE, "port": c.HTTP_PORT_NAME},
        "periodSeconds": 10,
        "timeoutSeconds": 2,
        "failureThreshold": 3,
    }
    return {
        "name": COMPONENT,
        "image": props.image or serving.sibling_image(images.WEBHOOK_RECEIVER),
        "imagePullPolicy": "Always",
        "command": ["python", "-m", "services.webhook.app"],
        "args": ["--host", "0.0.0.0", "--port", str(CONTAINER_PORT), "--state-dir", STATE_DIR, "--logs-dir", "/tmp"],
        "ports": [{"name": c.HTTP_PORT_NAME, "containerPort": CONTAINER_PORT, "protocol": "TCP"}],
        "env": [
            {"name": env.WEBHOOK_DISPATCH.name, "value": "github"},
            {"name": env.GITHUB_REPOSITORY.name, "value": props.github_repository},
            _secret_env(env.WEBHOOK_SECRET.name, props.secret_name, SECRET_KEY_WEBHOOK),
            _secret_env("GITHUB_TOKEN", props.secret_name, SECRET_KEY_GITHUB),
            _secret_env(env.ALERTMANAGER_TOKEN.name, props.secret_name, SECRET_KEY_ALERTMANAGER),
            {"name": "HOME", "value": "/tmp"},
            {"name": "TMPDIR", "value": "/tmp"},
        ],
        "resources": {"requests": {"cpu": "50m", "memory": "96Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}},
        "readinessProbe": probe,
        "livenessProbe": probe,
        "securityContext": c.container_security(),
        "volumeMounts": [{"name": "state", "mountPath": STATE_DIR}, {"name": "tmp", "mountPath": "/tmp"}],
    }


def deployment(serving: ServingProps, props: WebhookProps) -> c.Manifest:
    pod = {
        "serviceAccountName": NAME,
        "automountServiceAccountToken": False,
        "securityContext": c.pod_security(),
        "containers": [container(serving, props)],
        "volumes": [
            {"name": "state", "emptyDir": {"sizeLimit": "64Mi"}},
            {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
        ],
    }
    return c.manifest(
        "apps/v1",
        "Deployment",
        c.metadata(NAME, serving.namespace, _labels()),
        spec={
            "replicas": 1,
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": _selector()},
            "template": {"metadata": {"labels": _labels()}, "spec": pod},
        },
    )


def manifests(serving: ServingProps, props: WebhookProps) -> list[c.Manifest]:
    """ServiceAccount (no cloud role: it calls GitHub only), Deployment, Service, and a NetworkPolicy that admits
    MLflow's and Alertmanager's pods only, on the receiver's port."""
    meta = c.metadata(NAME, serving.namespace, _labels())
    service = c.manifest(
        "v1",
        "Service",
        meta,
        spec={
            "type": "ClusterIP",
            "selector": _selector(),
            "ports": [{"name": c.HTTP_PORT_NAME, "port": SERVICE_PORT, "targetPort": c.HTTP_PORT_NAME}],
        },
    )
    mlflow_pods = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": props.mlflow_namespace}},
        "podSelector": {"matchLabels": props.mlflow_pod_labels},
    }
    alertmanager_pods = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": MONITORING_NAMESPACE}},
        "podSelector": {"matchLabels": ALERTMANAGER_POD_LABELS},
    }
    ingress = c.manifest(
        "networking.k8s.io/v1",
        "NetworkPolicy",
        c.metadata(f"{NAME}-ingress", serving.namespace, _labels()),
        spec={
            "podSelector": {"matchLabels": _selector()},
            "policyTypes": ["Ingress"],
            "ingress": [
                {"from": [mlflow_pods, alertmanager_pods], "ports": [{"protocol": "TCP", "port": CONTAINER_PORT}]}
            ],
        },
    )
    account = c.manifest("v1", "ServiceAccount", meta, automountServiceAccountToken=False)
    return [account, deployment(serving, props), service, ingress]


def url(namespace: str = SERVING_NAMESPACE) -> str:
    """What the cluster's MLflow webhook calls (`mlp release webhook register --url ...`)."""
    return f"http://{NAME}.{namespace}.svc.cluster.local{contracts.WEBHOOK_ROUTE}"


def alerts_url(namespace: str = SERVING_NAMESPACE) -> str:
    """What the cluster's Alertmanager calls for the alerts the platform acts on."""
    return f"http://{NAME}.{namespace}.svc.cluster.local{contracts.ALERTMANAGER_ROUTE}"
