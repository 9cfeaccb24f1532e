"""The cluster registry's authentication: MLflow's basic-auth app in the MLflow chart, its users' credentials from
Secrets Manager through External Secrets (docs/security-registry.md).

Same model as the local runtime (`infra/local/mlflow.py`): authenticated users READ by default, the release bot
MANAGEs the model, the admin manages users and webhooks, anonymous requests get 401. The auth app keeps its users and
permissions in its own database (`mlflow_auth`) on the same RDS instance, created (and owned by MLflow's own role)
by the database bootstrap Job before MLflow starts (modules/database_bootstrap.py). The Secrets Manager secret
(`RegistryUsersSecret`, one JSON property per user plus the Flask CSRF key) is synced by an `ExternalSecret` into
the Kubernetes Secret the chart reads; no password is in a value, a manifest, Terraform state or the repository.
Values are put into Secrets Manager by the operator (runbooks/registry-credential-rotation.md).
"""

from __future__ import annotations

from typing import Any

from cdktn_provider_aws.secretsmanager_secret import SecretsmanagerSecret
from constructs import Construct

from core import contracts
from modules.common import Props

AUTH_DATABASE = "mlflow_auth"
DEFAULT_PERMISSION = "READ"  # docs/decisions/0140-registry-default-permission-read.md
AUTH_SECRET = "mlflow-auth"  # the admin credential, in the mlflow namespace (auth.existingAdminSecret)
AUTH_ENV_SECRET = "mlflow-auth-env"  # MLFLOW_FLASK_SERVER_SECRET_KEY, passed into the server's environment
SECRET_STORE = "aws-secrets-manager"  # the SecretStore of the mlflow namespace (charts/mlflow-db-secret)
FLASK_KEY_PROPERTY = "mlflow_flask_csrf_key"  # the same name as the local secret store's
ADMIN_USERNAME_KEY, ADMIN_PASSWORD_KEY = "admin-username", "admin-password"
# MLflow's image (the chart's appVersion); it has psycopg2, so the database bootstrap Job runs in it.
MLFLOW_IMAGE = "burakince/mlflow:3.14.0"


def secret_name(prefix: str) -> str:
    """The Secrets Manager secret holding every registry user's password (JSON, one property per secret name)."""
    return f"{prefix}/mlflow/registry-users"


class RegistryUsersSecretProps(Props):
    prefix: str
    kms_key_arn: str


class RegistryUsersSecret(Construct):
    """The Secrets Manager secret of the registry users, encrypted with the data layer's key; its value is set by
    the operator, never by Terraform (so no password enters the state)."""

    def __init__(self, scope: Construct, id_: str, props: RegistryUsersSecretProps) -> None:
        super().__init__(scope, id_)
        self.secret = SecretsmanagerSecret(
            self,
            "secret",
            name=secret_name(props.prefix),
            description="MLflow registry users: admin, release bot, model server, reader passwords; Flask CSRF key",
            kms_key_id=props.kms_key_arn,
            recovery_window_in_days=7,
        )
        self.arn = self.secret.arn


def external_secret(
    *,
    name: str,
    namespace: str,
    remote_key: str,
    data: dict[str, str],
    fixed: dict[str, str] | None = None,
    refresh: str = "1h",
    store: str = SECRET_STORE,
    store_kind: str = "SecretStore",
) -> dict[str, Any]:
    """An ExternalSecret (external-secrets.io/v1) copying JSON properties of one Secrets Manager secret into the
    Kubernetes Secret `name`: `data` maps Secret key -> property; `fixed` adds literal, non-secret keys."""
    target: dict[str, Any] = {"name": name, "creationPolicy": "Owner"}
    if fixed:
        target["template"] = {"engineVersion": "v2", "mergePolicy": "Merge", "data": dict(fixed)}
    return {
        "apiVersion": "external-secrets.io/v1",
        "kind": "ExternalSecret",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "refreshInterval": refresh,
            "secretStoreRef": {"name": store, "kind": store_kind},
            "target": target,
            "data": [
                {"secretKey": key, "remoteRef": {"key": remote_key, "property": prop}}
                for key, prop in sorted(data.items())
            ],
        },
    }


def auth_external_secrets(remote_key: str, namespace: str) -> list[dict[str, Any]]:
    """What the MLflow server needs from Secrets Manager (`remote_key`: the `RegistryUsersSecret`'s name): the
    admin credential (`mlflow-auth`, read by the chart's `auth.existingAdminSecret`) and the Flask CSRF key
    (`mlflow-auth-env`, passed whole into the server's environment)."""
    return [
        external_secret(
            name=AUTH_SECRET,
            namespace=namespace,
            remote_key=remote_key,
            data={ADMIN_PASSWORD_KEY: contracts.REGISTRY_USERS[contracts.REGISTRY_ADMIN]},
            fixed={ADMIN_USERNAME_KEY: contracts.REGISTRY_ADMIN},
        ),
        external_secret(
            name=AUTH_ENV_SECRET,
            namespace=namespace,
            remote_key=remote_key,
            data={contracts.MLFLOW_FLASK_SECRET_KEY_VAR: FLASK_KEY_PROPERTY},
        ),
    ]


def auth_chart_values(*, db_host: str, db_secret: str) -> dict[str, Any]:
    """The MLflow chart's (community-charts/mlflow) values that turn the basic-auth app on."""
    return {
        "auth": {
            "enabled": True,
            "defaultPermission": DEFAULT_PERMISSION,
            "appName": "basic-auth",
            "authorizationFunction": "mlflow.server.auth:authenticate_request_basic_auth",
            "existingAdminSecret": {
                "name": AUTH_SECRET,
                "usernameKey": ADMIN_USERNAME_KEY,
                "passwordKey": ADMIN_PASSWORD_KEY,
            },
            "postgres": {
                "enabled": True,
                "host": db_host,
                "port": 5432,
                "database": AUTH_DATABASE,
                "driver": "psycopg2",
                "existingSecret": {"name": db_secret, "usernameKey": "username", "passwordKey": "password"},
            },
        },
        "extraSecretNamesForEnvFrom": [AUTH_ENV_SECRET],
    }
