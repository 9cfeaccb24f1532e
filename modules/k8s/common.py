"""Names, labels and metadata shared by every manifest, so selectors in one file match labels in another."""

from __future__ import annotations

from typing import Any

from core import contracts, env

Manifest = dict[str, Any]

PART_OF = "ml-platform"
MANAGED_BY = "mlp-render"
HTTP_PORT = 3000
HTTP_PORT_NAME = "http"


def version_name(model_name: str, version: int) -> str:
    return f"{model_name}-v{version}"


def selector_labels(model_name: str, version: int | None = None) -> dict[str, str]:
    """The labels selectors match on. `model_name`/`model_version` are also what Prometheus relabels to."""
    labels = {"app.kubernetes.io/name": model_name, "model_name": model_name}
    if version is not None:
        labels["model_version"] = str(version)
    return labels


def platform_labels(component: str) -> dict[str, str]:
    """Labels of an object every catalogue model shares (a service account, a grant): no model's name."""
    return {
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/managed-by": MANAGED_BY,
    }


def labels(model_name: str, version: int | None = None, component: str = "model-server") -> dict[str, str]:
    out = {
        **selector_labels(model_name, version),
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/managed-by": MANAGED_BY,
    }
    if version is not None:
        out["app.kubernetes.io/instance"] = version_name(model_name, version)
        out["app.kubernetes.io/version"] = str(version)
    return out


def metadata(name: str, namespace: str | None, labels: dict[str, str], **extra: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": dict(labels)}
    if namespace is not None:
        meta["namespace"] = namespace
    meta.update(extra)
    return meta


def manifest(api_version: str, kind: str, meta: dict[str, Any], **body: Any) -> Manifest:
    return {"apiVersion": api_version, "kind": kind, "metadata": meta, **body}


SYSTEM_NODE_SELECTOR = {"mlp.io/pool": "system"}  # the platform's own workloads' node group (modules/node_groups.py)
RUN_AS = 10001  # the non-root user every image of the repository creates (its Containerfiles)


def container_security() -> dict[str, Any]:
    """The restricted Pod Security profile for a container: non-root, read-only root, no capabilities."""
    return {
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "runAsUser": RUN_AS,
        "runAsGroup": RUN_AS,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def pod_security() -> dict[str, Any]:
    """The pod-level half: emptyDirs owned by the image's group."""
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS,
        "runAsGroup": RUN_AS,
        "fsGroup": RUN_AS,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


REGISTRY_PASSWORD_KEY = "password"


def registry_secret_name(user: str) -> str:
    """The Secret holding one registry user's password (filled from Secrets Manager by External Secrets)."""
    return f"registry-{user}"


def artifact_key_env() -> dict[str, Any]:
    """The variable holding the key that verifies a version's signed manifest before it is used (not a secret): by
    reference to the ConfigMap the operator fills from KMS's public key (docs/security.md, Verified artifacts)."""
    ref = {"name": contracts.ARTIFACT_KEY_CONFIGMAP, "key": contracts.ARTIFACT_KEY_CONFIGMAP_KEY}
    return {"name": env.ARTIFACT_PUBLIC_KEY.name, "valueFrom": {"configMapKeyRef": ref}}


def artifact_key_config_map(namespace: str, public_key: str) -> Manifest:
    """The ConfigMap `artifact_key_env` reads: the signing key's public half, not a secret."""
    meta = metadata(contracts.ARTIFACT_KEY_CONFIGMAP, namespace, {"app.kubernetes.io/part-of": PART_OF})
    return manifest("v1", "ConfigMap", meta, data={contracts.ARTIFACT_KEY_CONFIGMAP_KEY: public_key})


def registry_credential_env(user: str) -> list[dict[str, Any]]:
    """MLflow's own credential variables for a pod that reads the registry as `user` (core.contracts.REGISTRY_*):
    the name in clear, the password by reference only."""
    ref = {"secretKeyRef": {"name": registry_secret_name(user), "key": REGISTRY_PASSWORD_KEY}}
    return [
        {"name": contracts.MLFLOW_USERNAME_VAR, "value": user},
        {"name": contracts.MLFLOW_PASSWORD_VAR, "valueFrom": ref},
    ]
