"""The Qdrant server the RAG models keep their index in, from its official Helm chart (decision 0181).

AWS side (the data stack): the API key's Secrets Manager secret, created empty like the other secrets whose value the
operator puts (modules/operator_secrets.py; the command that generates it: docs/data-stores.md), so the key enters
neither Terraform state nor a plan; the snapshot bucket and the server's IRSA role are the usual `modules/buckets.py`
and `modules/irsa.py` constructs (statements in `modules/workload_roles.py`).

Cluster side (the add-on stack): the chart's values (`values`), and the ExternalSecrets that copy the key into the
Qdrant namespace (its own SecretStore identity, like Alertmanager's) and the serving namespace (the platform store),
where the RAG servers read it by `secretKeyRef` (modules/k8s/rag.py).

Choices against the chart's defaults (values keys from its values.yaml, values.schema.json and statefulset template;
sources in infra/config/versions.yaml):
- the key reaches Qdrant as `QDRANT__SERVICE__API_KEY` by `secretKeyRef`, not through the chart's `apiKey.valueFrom`:
  that form copies the Secret with Helm's `lookup` at install time into a Secret of the chart's own, and an install
  that ran before External Secrets had synced would copy nothing and start Qdrant without a key. By `secretKeyRef`
  the pod does not start until the Secret exists, and a rotated key needs a restart, not a Helm upgrade;
- snapshots go to S3 (`storage.snapshots_config`), with credentials from the default chain: Qdrant's S3 client is
  object_store's `AmazonS3Builder::from_env()`, which takes the web identity that IRSA injects
  (`AWS_WEB_IDENTITY_TOKEN_FILE`, `AWS_ROLE_ARN`) when no access key is configured, so none is;
- one replica, cluster mode off (no p2p port), telemetry to qdrant.io off;
- Pod Security `restricted`: all capabilities dropped, RuntimeDefault seccomp, and the chart's `ensure-dir-ownership`
  init container off (it runs `chown` as the image's root user); `fsGroup` gives the volume to the server's group.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from modules import cluster_services as cs
from modules.common import Props
from modules.registry_auth import SECRET_STORE, external_secret

API_KEY_ENV = "QDRANT__SERVICE__API_KEY"  # Qdrant reads any config key from QDRANT__<SECTION>__<KEY>
API_KEY_PROPERTY = "api-key"  # the JSON property of the Secrets Manager secret
SECRETS_RELEASE = "qdrant-secrets"  # the local chart: SecretStore (own identity) and ExternalSecret in the namespace
SNAPSHOTS_STORAGE = "s3"
RUN_AS_USER, RUN_AS_GROUP, FS_GROUP = 1000, 2000, 3000  # the chart's defaults (values.yaml securityContexts)


def api_key_secret_name(prefix: str) -> str:
    """The Secrets Manager secret holding the API key (JSON, property `api-key`)."""
    return f"{prefix}/qdrant/api-key"


class QdrantProps(Props):
    """What the Qdrant release needs from the environment (sizes from infra/config/<env>.yaml `qdrant`)."""

    region: str
    namespace: str = cs.QDRANT_NAMESPACE
    snapshot_bucket: str = Field(min_length=3, description="The data stack's snapshot bucket (may be a token)")
    role_arn: str = Field(description="IRSA role of the server: that bucket only (workload_roles.QDRANT)")
    volume_gib: int = Field(ge=1, description="gp3 volume of its storage")
    cpu_request: str
    cpu_limit: str
    memory_request: str
    memory_limit: str
    node_selector: dict[str, str] = Field(default_factory=dict)


def _container_security() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS_USER,
        "runAsGroup": RUN_AS_GROUP,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def values(props: QdrantProps) -> dict[str, Any]:
    """The qdrant chart's values (keys checked against modules/charts/qdrant-values.schema.json)."""
    key_ref = {"secretKeyRef": {"name": cs.QDRANT_API_KEY_SECRET, "key": cs.QDRANT_API_KEY_SECRET_KEY}}
    return {
        "fullnameOverride": cs.QDRANT_RELEASE,  # Service, StatefulSet and ServiceAccount `qdrant` (cluster_services)
        "replicaCount": 1,
        "env": [{"name": API_KEY_ENV, "valueFrom": key_ref}],
        "apiKey": False,  # no chart-made Secret: see the module's docstring
        "readOnlyApiKey": False,
        "service": {"type": "ClusterIP"},
        "ingress": {"enabled": False},
        "persistence": {
            "accessModes": ["ReadWriteOnce"],
            "size": f"{props.volume_gib}Gi",
            "storageClassName": cs.GP3_STORAGE_CLASS,
        },
        # Snapshots are written to S3; /qdrant/snapshots stays the chart's emptyDir, where one is staged for upload.
        "snapshotPersistence": {"enabled": False},
        "config": {
            "cluster": {"enabled": False},
            "telemetry_disabled": True,
            "storage": {
                "snapshots_config": {
                    "snapshots_storage": SNAPSHOTS_STORAGE,
                    "s3_config": {"bucket": props.snapshot_bucket, "region": props.region},
                }
            },
        },
        "serviceAccount": {"annotations": {"eks.amazonaws.com/role-arn": props.role_arn}},
        "updateVolumeFsOwnership": False,
        "podSecurityContext": {
            "runAsNonRoot": True,
            "fsGroup": FS_GROUP,
            "fsGroupChangePolicy": "OnRootMismatch",
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containerSecurityContext": _container_security(),
        "resources": {
            "requests": {"cpu": props.cpu_request, "memory": props.memory_request},
            "limits": {"cpu": props.cpu_limit, "memory": props.memory_limit},
        },
        "nodeSelector": dict(props.node_selector),
        # Its /metrics needs the API key; scraping it would put the key in Prometheus's config (not done yet).
        "metrics": {"serviceMonitor": {"enabled": False}},
    }


def api_key_external_secret(
    remote_key: str, namespace: str, store: str = SECRET_STORE, store_kind: str = "SecretStore"
) -> dict[str, Any]:
    """The ExternalSecret copying the key into the Secret `qdrant-api-key` of `namespace`."""
    return external_secret(
        name=cs.QDRANT_API_KEY_SECRET,
        namespace=namespace,
        remote_key=remote_key,
        data={cs.QDRANT_API_KEY_SECRET_KEY: API_KEY_PROPERTY},
        store=store,
        store_kind=store_kind,
    )
