"""MLflow's database user is its own role, not the RDS master, and every connection verifies RDS's certificate.

A Job in MLflow's namespace (a Helm post-install/post-upgrade hook of the `mlflow-db-secret` chart, so it runs before
the MLflow release, which depends on that chart) runs `charts/mlflow-db-secret/files/db_bootstrap.py` as the master:
it creates or re-passwords the `mlflow_app` role (LOGIN only), makes it the owner of MLflow's two databases (creating
the auth app's) and hands it what the master created there before. Only the Job's pod sees the master credential:
it is synced by its own SecretStore, authenticated as the Job's own ServiceAccount, whose IRSA role alone may read
the RDS-managed master secret. MLflow reads `mlflow_app`'s password, which the operator puts into Secrets Manager
(`<prefix>/mlflow/db-app`).

TLS: `PGSSLMODE=verify-full` with RDS's global CA bundle, fetched over HTTPS from AWS's trust store by an init
container (`fetch-rds-ca`) into an emptyDir, in the Job's pod and in MLflow's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modules.k8s import common as c

APP_ROLE = "mlflow_app"
SCRIPT = Path(__file__).resolve().parent / "charts" / "mlflow-db-secret" / "files" / "db_bootstrap.py"
NAME = "mlflow-db-bootstrap"  # Job, ServiceAccount, ConfigMap
MASTER_STORE = "rds-master"  # the SecretStore only the Job's ServiceAccount authenticates
MASTER_SECRET = "mlflow-db-master"  # the Kubernetes Secret only the Job reads
# AWS's distribution point of the RDS certificate authorities (RDS User Guide, "Using SSL/TLS to encrypt a connection
# to a DB instance or cluster": global bundle for all Regions).
RDS_CA_URL = "https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem"
CA_DIR = "/etc/rds-ca"
CA_FILE = f"{CA_DIR}/global-bundle.pem"
CA_VOLUME = "rds-ca"

# Fetched over verified HTTPS; refused unless it parses as a CA bundle with at least one certificate.
_FETCH = (
    "import ssl, sys, urllib.request\n"
    f"pem = urllib.request.urlopen({RDS_CA_URL!r}, timeout=30).read()\n"
    "count = pem.count(b'-----BEGIN CERTIFICATE-----')\n"
    "ssl.create_default_context(cadata=pem.decode())\n"
    "assert count > 0, 'no certificate in the RDS CA bundle'\n"
    f"open({CA_FILE!r}, 'wb').write(pem)\n"
    "print(f'RDS CA bundle: {count} certificates')\n"
)


def _security() -> dict[str, Any]:
    # MLflow's image runs as root by default: the Job's containers run as an unprivileged user instead.
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "runAsUser": c.RUN_AS,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


RESOURCES = {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}}


def fetch_ca_container(image: str) -> dict[str, Any]:
    return {
        "name": "fetch-rds-ca",
        "image": image,
        "imagePullPolicy": "Always",
        "command": ["python", "-c", _FETCH],
        "resources": RESOURCES,
        "securityContext": _security(),
        "volumeMounts": [{"name": CA_VOLUME, "mountPath": CA_DIR}],
    }


def tls_env() -> dict[str, str]:
    """libpq's own variables: every connection verifies the server's certificate and host name."""
    return {"PGSSLMODE": "verify-full", "PGSSLROOTCERT": CA_FILE}


def _secret_env(var: str, secret: str, key: str) -> dict[str, Any]:
    return {"name": var, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def job(*, namespace: str, image: str, db_host: str, app_secret: str, databases: list[str]) -> c.Manifest:
    env = [
        {"name": "PGHOST", "value": db_host},
        {"name": "PGPORT", "value": "5432"},
        *({"name": k, "value": v} for k, v in tls_env().items()),
        _secret_env("MASTER_USER", MASTER_SECRET, "username"),
        _secret_env("MASTER_PASSWORD", MASTER_SECRET, "password"),
        {"name": "APP_USER", "value": APP_ROLE},
        _secret_env("APP_PASSWORD", app_secret, "password"),
        {"name": "DATABASES", "value": ",".join(databases)},
    ]
    annotations = {
        # After the chart's ExternalSecrets exist, before the MLflow release (it depends on this chart); replaced
        # on every upgrade so a new app password is applied.
        "helm.sh/hook": "post-install,post-upgrade",
        "helm.sh/hook-delete-policy": "before-hook-creation,hook-succeeded",
    }
    labels = {"app.kubernetes.io/name": NAME, "app.kubernetes.io/part-of": c.PART_OF}
    pod = {
        "metadata": {"labels": labels},
        "spec": {
            "serviceAccountName": NAME,
            # No Kubernetes API call: only IRSA's projected token, which the EKS webhook mounts on its own.
            "automountServiceAccountToken": False,
            "restartPolicy": "Never",
            "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
            "initContainers": [fetch_ca_container(image)],
            "containers": [
                {
                    "name": "bootstrap",
                    "image": image,
                    "imagePullPolicy": "Always",
                    "command": ["python", "/bootstrap/db_bootstrap.py"],
                    "resources": RESOURCES,
                    "env": env,
                    "securityContext": _security(),
                    "volumeMounts": [
                        {"name": CA_VOLUME, "mountPath": CA_DIR, "readOnly": True},
                        {"name": "script", "mountPath": "/bootstrap", "readOnly": True},
                    ],
                }
            ],
            "volumes": [
                {"name": CA_VOLUME, "emptyDir": {"sizeLimit": "1Mi"}},
                {"name": "script", "configMap": {"name": NAME}},
            ],
        },
    }
    meta = c.metadata(NAME, namespace, labels, annotations=annotations)
    return c.manifest(
        "batch/v1", "Job", meta, spec={"backoffLimit": 6, "ttlSecondsAfterFinished": 3600, "template": pod}
    )


def manifests(
    *,
    namespace: str,
    region: str,
    image: str,
    db_host: str,
    master_secret_arn: str,
    app_secret: str,
    role_arn: str,
    databases: list[str],
) -> list[c.Manifest]:
    """The Job with its ServiceAccount (IRSA), script, SecretStore and the master's ExternalSecret."""
    labels = {"app.kubernetes.io/name": NAME, "app.kubernetes.io/part-of": c.PART_OF}
    sa = c.manifest(
        "v1",
        "ServiceAccount",
        c.metadata(NAME, namespace, labels, annotations={"eks.amazonaws.com/role-arn": role_arn}),
    )
    script = c.manifest("v1", "ConfigMap", c.metadata(NAME, namespace, labels), data={SCRIPT.name: SCRIPT.read_text()})
    store = c.manifest(
        "external-secrets.io/v1",
        "SecretStore",
        c.metadata(MASTER_STORE, namespace, labels),
        spec={
            "provider": {
                "aws": {
                    "service": "SecretsManager",
                    "region": region,
                    "auth": {"jwt": {"serviceAccountRef": {"name": NAME}}},
                }
            }
        },
    )
    master = c.manifest(
        "external-secrets.io/v1",
        "ExternalSecret",
        c.metadata(MASTER_SECRET, namespace, labels),
        spec={
            "refreshInterval": "1h",  # RDS rotates the master password in Secrets Manager
            "secretStoreRef": {"name": MASTER_STORE, "kind": "SecretStore"},
            "target": {"name": MASTER_SECRET, "creationPolicy": "Owner"},
            "data": [
                {"secretKey": k, "remoteRef": {"key": master_secret_arn, "property": k}}
                for k in ("username", "password")
            ],
        },
    )
    return [
        sa,
        script,
        store,
        master,
        job(namespace=namespace, image=image, db_host=db_host, app_secret=app_secret, databases=databases),
    ]
