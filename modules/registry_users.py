"""The registry's users in the cluster: a Job creates them in MLflow (and gives the release bot the platform's model)
from the passwords in Secrets Manager, after every install and upgrade of MLflow (docs/security-registry.md).

It runs `charts/mlflow-registry-users/files/provision_users.py` in MLflow's own image as a Helm post-install and
post-upgrade hook of the `mlflow-registry-users` chart, which the add-ons stack installs after MLflow. Its passwords
come from one ExternalSecret (`mlflow-registry-users`, in MLflow's namespace, through MLflow's SecretStore); the Job's
pod reaches MLflow's port only (modules/k8s/platform.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core import contracts
from core.policy import policy
from modules import cluster_services as cs
from modules import registry_auth
from modules.k8s import common as c
from modules.k8s.platform import REGISTRY_USERS_JOB_PODS

NAME = REGISTRY_USERS_JOB_PODS["app.kubernetes.io/name"]  # Job, ConfigMap, the ExternalSecret and its Secret
SCRIPT = Path(__file__).resolve().parent / "charts" / NAME / "files" / "provision_users.py"
POD_LABELS = REGISTRY_USERS_JOB_PODS  # what MLflow's NetworkPolicy admits


def password_var(user: str) -> str:
    """The Job's variable holding `user`'s password: `MLP_RELEASE_BOT_PASSWORD`."""
    return user.upper().replace("-", "_") + "_PASSWORD"


def mlflow_service_url() -> str:
    return f"http://{cs.MLFLOW_RELEASE}.{cs.MLFLOW_NAMESPACE}.svc.cluster.local:{cs.MLFLOW_PORT}"


def manifests(*, namespace: str, image: str, remote_key: str) -> list[c.Manifest]:
    users = [u for u in contracts.REGISTRY_USERS if u != contracts.REGISTRY_ADMIN]
    secret = registry_auth.external_secret(
        name=NAME,
        namespace=namespace,
        remote_key=remote_key,
        data={password_var(u): prop for u, prop in contracts.REGISTRY_USERS.items()},
    )
    ref = {"name": NAME}
    env: list[dict[str, Any]] = [
        {"name": "MLFLOW_URL", "value": mlflow_service_url()},
        {"name": "MODEL_NAME", "value": policy().release.default_model},
        {"name": "ADMIN_USER", "value": contracts.REGISTRY_ADMIN},
        {"name": "BOT_USER", "value": contracts.REGISTRY_RELEASE_BOT},
        {"name": "USERS", "value": ",".join(f"{u}={password_var(u)}" for u in users)},
        {
            "name": "ADMIN_PASSWORD",
            "valueFrom": {"secretKeyRef": {**ref, "key": password_var(contracts.REGISTRY_ADMIN)}},
        },
        *({"name": password_var(u), "valueFrom": {"secretKeyRef": {**ref, "key": password_var(u)}}} for u in users),
    ]
    security = {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "runAsUser": c.RUN_AS,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    pod = {
        "metadata": {"labels": dict(POD_LABELS)},
        "spec": {
            "automountServiceAccountToken": False,
            "restartPolicy": "Never",
            "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [
                {
                    "name": "provision",
                    "image": image,
                    "imagePullPolicy": "Always",
                    "command": ["python", f"/provision/{SCRIPT.name}"],
                    "env": env,
                    "resources": {
                        "requests": {"cpu": "50m", "memory": "64Mi"},
                        "limits": {"cpu": "500m", "memory": "128Mi"},
                    },
                    "securityContext": security,
                    "volumeMounts": [{"name": "script", "mountPath": "/provision", "readOnly": True}],
                }
            ],
            "volumes": [{"name": "script", "configMap": {"name": NAME}}],
        },
    }
    annotations = {
        "helm.sh/hook": "post-install,post-upgrade",  # after MLflow (this chart is installed after its release)
        "helm.sh/hook-delete-policy": "before-hook-creation,hook-succeeded",
    }
    job = c.manifest(
        "batch/v1",
        "Job",
        c.metadata(NAME, namespace, dict(POD_LABELS), annotations=annotations),
        spec={"backoffLimit": 4, "ttlSecondsAfterFinished": 3600, "template": pod},
    )
    script = c.manifest(
        "v1", "ConfigMap", c.metadata(NAME, namespace, dict(POD_LABELS)), data={SCRIPT.name: SCRIPT.read_text()}
    )
    return [secret, script, job]
