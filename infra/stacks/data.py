"""Data layer: RDS PostgreSQL for MLflow, the artifact, inference-log and Qdrant snapshot buckets, ECR, the workload
IRSA roles and the secrets they read."""

from __future__ import annotations

from dataclasses import dataclass

from cdktn import TerraformOutput
from constructs import Construct

from core import contracts, images
from infra.config import EnvConfig
from infra.stacks.base import LayerStack
from infra.stacks.cluster import ClusterOutputs
from infra.stacks.network import NetworkOutputs
from modules.alerting import AlertReceiversSecret, AlertReceiversSecretProps, reader_statements
from modules.artifact_signing import ArtifactSigningKey, ArtifactSigningKeyProps
from modules.buckets import Bucket, BucketProps
from modules.common import kms_key
from modules.database import Database, DatabaseProps
from modules.database_bootstrap import APP_ROLE
from modules.irsa import IrsaProps, IrsaRole
from modules.operator_secrets import OperatorSecret, OperatorSecretProps, github_app_secret_name, webhook_secret_name
from modules.qdrant import api_key_secret_name
from modules.registry import Registry, RegistryProps
from modules.registry_auth import RegistryUsersSecret, RegistryUsersSecretProps
from modules.workload_roles import (
    ALERT_SECRETS,
    ARTIFACT_PREFIX,
    DB_BOOTSTRAP,
    DRIFT_JOB,
    DRIFT_RUNNER,
    MLFLOW,
    MODEL_SERVER,
    PLATFORM_SECRETS,
    QDRANT,
    QDRANT_SECRETS,
    RELEASE_RUNNER,
    DataAccess,
    WorkloadIdentity,
    db_bootstrap_statements,
    drift_job_statements,
    mlflow_statements,
    model_server_statements,
    platform_secrets_statements,
    qdrant_secrets_statements,
    qdrant_statements,
    release_runner_statements,
)

# Data store -> what its own KMS key encrypts.
KEY_STORES = {
    "artifacts": "S3 artifact bucket (models, registry artifacts, drift reports)",
    "inference-logs": "S3 inference-log bucket",
    "database": "RDS storage, snapshots and Performance Insights",
    "secrets": "Secrets Manager secrets (the RDS-managed master secret)",
    "registry": "ECR repositories",
    "qdrant-snapshots": "S3 bucket of the Qdrant server's snapshots (the RAG models' index)",
}
# The database keeps the construct ID of the former single data key: an existing environment keeps that key for RDS,
# whose key cannot change in place (docs/upgrade-security-by-default.md).
KEY_IDS = {"database": "data-key"}


@dataclass(frozen=True)
class DataOutputs:
    db_host: str
    db_name: str
    db_secret_arn: str
    db_app_secret_arn: str
    db_bootstrap_role_arn: str
    registry_secret_name: str
    artifact_bucket: str
    inference_log_bucket: str
    mlflow_role_arn: str
    model_server_role_arn: str
    drift_job_role_arn: str
    artifact_signing_key_arn: str
    alert_receivers_secret_name: str
    alert_secrets_role_arn: str
    release_runner_role_arn: str
    drift_runner_role_arn: str
    platform_secrets_role_arn: str
    github_app_secret_name: str
    webhook_secret_name: str
    qdrant_snapshot_bucket: str
    qdrant_role_arn: str
    qdrant_secrets_role_arn: str
    qdrant_api_key_secret_name: str


class DataStack(LayerStack):
    layer = "data"

    def __init__(self, scope: Construct, env: EnvConfig, network: NetworkOutputs, cluster: ClusterOutputs) -> None:
        super().__init__(scope, env)
        p = env.prefix
        # One key per data store (decision 0133): a grant or a leaked permission on one key opens one store only,
        # and each key's CloudTrail trail tells which store was read.
        self.keys = {
            store: kms_key(
                self,
                KEY_IDS.get(store, f"{store}-key"),
                alias=f"{p}-{store}",
                description=f"{p}: {what}",
                account_id=network.account_id,
                region=env.region,
            )
            for store, what in KEY_STORES.items()
        }
        st = env.storage
        # Bucket names carry the account ID: S3 names are global, and a fork must not collide with the original.
        self.artifacts = Bucket(
            self,
            "artifacts",
            BucketProps(
                bucket_name=f"{p}-artifacts-{network.account_id}",
                kms_key_arn=self.keys["artifacts"].arn,
                noncurrent_expire_days=st.artifact_noncurrent_expire_days,
                # Registered versions are write-once: locked versions, and only MLflow's role writes under mlflow/.
                object_lock_days=st.artifact_lock_days,
                write_once_prefix=ARTIFACT_PREFIX,
                writer_role_arns=[f"arn:aws:iam::{network.account_id}:role/{p}-{MLFLOW.role_suffix}"],
            ),
        )
        self.inference_logs = Bucket(
            self,
            "inference-logs",
            BucketProps(
                bucket_name=f"{p}-inference-logs-{network.account_id}",
                kms_key_arn=self.keys["inference-logs"].arn,
                noncurrent_expire_days=7,
                transition_ia_days=st.inference_log_ia_days,
                expire_days=st.inference_log_expire_days,
            ),
        )
        q = env.qdrant
        # The Qdrant server's own snapshots (backups of the index it serves; a RAG version's pinned index lives in
        # the registry): written by Qdrant alone, kept `snapshot_expire_days` (modules/qdrant.py).
        self.qdrant_snapshots = Bucket(
            self,
            "qdrant-snapshots",
            BucketProps(
                bucket_name=f"{p}-{contracts.QDRANT_SNAPSHOT_BUCKET_SUFFIX}-{network.account_id}",
                kms_key_arn=self.keys["qdrant-snapshots"].arn,
                noncurrent_expire_days=q.snapshot_noncurrent_expire_days,
                expire_days=q.snapshot_expire_days,
            ),
        )
        Registry(
            self,
            "ecr",
            RegistryProps(
                prefix=p,
                repositories=list(images.REPOSITORIES),
                kms_key_arn=self.keys["registry"].arn,
                keep_untagged_days=st.ecr_keep_untagged_days,
            ),
        )
        db = env.database
        self.database = Database(
            self,
            "mlflow-db",
            DatabaseProps(
                identifier=f"{p}-mlflow",
                vpc_id=network.vpc_id,
                subnet_ids=network.private_subnet_ids,
                client_security_group_id=cluster.cluster_security_group_id,
                kms_key_arn=self.keys["database"].arn,
                secret_kms_key_arn=self.keys["secrets"].arn,
                engine_version=db.engine_version,
                instance_class=db.instance_class,
                allocated_storage_gib=db.allocated_storage_gib,
                max_allocated_storage_gib=db.max_allocated_storage_gib,
                multi_az=db.multi_az,
                deletion_protection=db.deletion_protection,
                backup_retention_days=db.backup_retention_days,
                database_name=db.database_name,
                master_username=db.master_username,
            ),
        )
        self.registry_users = RegistryUsersSecret(
            self, "registry-users", RegistryUsersSecretProps(prefix=p, kms_key_arn=self.keys["secrets"].arn)
        )
        self.alert_receivers = AlertReceiversSecret(
            self, "alert-receivers", AlertReceiversSecretProps(prefix=p, kms_key_arn=self.keys["secrets"].arn)
        )
        # Values put by the operator (docs/platform-addons.md), like the registry users' secret.
        self.github_app = OperatorSecret(
            self,
            "github-app",
            OperatorSecretProps(
                name=github_app_secret_name(p),
                description="GitHub App the in-cluster runner scale sets register with (id, installation id, key)",
                kms_key_arn=self.keys["secrets"].arn,
            ),
        )
        # MLflow's own database role's password (the role is created by the bootstrap Job, decision 0144).
        self.db_app_secret = OperatorSecret(
            self,
            "mlflow-db-app",
            OperatorSecretProps(
                name=f"{p}/mlflow/db-app",
                description=f"MLflow's database role: username {APP_ROLE} and its password",
                kms_key_arn=self.keys["secrets"].arn,
            ),
        )
        self.webhook_secret = OperatorSecret(
            self,
            "webhook-receiver",
            OperatorSecretProps(
                name=webhook_secret_name(p),
                description="Registry-webhook receiver: MLflow webhook HMAC secret and the dispatch token",
                kms_key_arn=self.keys["secrets"].arn,
            ),
        )
        # Generated by the operator (docs/data-stores.md); External Secrets copies it into two namespaces.
        self.qdrant_api_key = OperatorSecret(
            self,
            "qdrant-api-key",
            OperatorSecretProps(
                name=api_key_secret_name(p),
                description="Qdrant server API key (the RAG models' index): JSON property api-key",
                kms_key_arn=self.keys["secrets"].arn,
            ),
        )
        access = DataAccess(
            region=env.region,
            artifact_bucket_arn=self.artifacts.arn,
            artifact_key_arn=self.keys["artifacts"].arn,
            inference_log_bucket_arn=self.inference_logs.arn,
            inference_log_key_arn=self.keys["inference-logs"].arn,
            db_secret_arn=self.database.master_secret_arn,
            db_app_secret_arn=self.db_app_secret.arn,
            secret_key_arn=self.keys["secrets"].arn,
            registry_secret_arn=self.registry_users.arn,
            operator_secret_arns=[self.github_app.arn, self.webhook_secret.arn],
            image_repository_arns=[
                f"arn:aws:ecr:{env.region}:{network.account_id}:repository/{images.repository(p, name)}"
                for name in images.REPOSITORIES
            ],
            qdrant_snapshot_bucket_arn=self.qdrant_snapshots.arn,
            qdrant_snapshot_key_arn=self.keys["qdrant-snapshots"].arn,
            qdrant_api_key_secret_arn=self.qdrant_api_key.arn,
        )

        def role(who: WorkloadIdentity, statements: list[dict[str, object]]) -> str:
            return IrsaRole(
                self,
                f"{who.role_suffix}-irsa",
                IrsaProps(
                    role_name=f"{p}-{who.role_suffix}",
                    oidc_provider_arn=cluster.oidc_provider_arn,
                    oidc_issuer_host=cluster.oidc_issuer_host,
                    namespace=who.namespace,
                    service_account=who.service_account,
                    statements=statements,
                ),
            ).arn

        # Registrations for this environment run on its in-cluster release runners (the only place that reaches
        # MLflow, decision 0143) and sign as their IRSA role (pipelines/registry/signers.py).
        release_runner_role_arn = role(RELEASE_RUNNER, release_runner_statements(access))
        signing = ArtifactSigningKey(
            self,
            "artifact-signing",
            ArtifactSigningKeyProps(
                prefix=p, account_id=network.account_id, signer_role_arns=[release_runner_role_arn]
            ),
        )
        self.outputs = DataOutputs(
            db_host=self.database.endpoint_address,
            db_name=db.database_name,
            db_secret_arn=self.database.master_secret_arn,
            db_app_secret_arn=self.db_app_secret.arn,
            db_bootstrap_role_arn=role(DB_BOOTSTRAP, db_bootstrap_statements(access)),
            registry_secret_name=self.registry_users.secret.name,
            artifact_bucket=self.artifacts.name,
            inference_log_bucket=self.inference_logs.name,
            mlflow_role_arn=role(MLFLOW, mlflow_statements(access)),
            model_server_role_arn=role(MODEL_SERVER, model_server_statements(access)),
            drift_job_role_arn=role(DRIFT_JOB, drift_job_statements(access)),
            artifact_signing_key_arn=signing.arn,
            alert_receivers_secret_name=self.alert_receivers.secret.name,
            alert_secrets_role_arn=role(
                ALERT_SECRETS, reader_statements(self.alert_receivers.arn, self.keys["secrets"].arn, env.region)
            ),
            release_runner_role_arn=release_runner_role_arn,
            drift_runner_role_arn=role(DRIFT_RUNNER, drift_job_statements(access)),
            platform_secrets_role_arn=role(PLATFORM_SECRETS, platform_secrets_statements(access)),
            github_app_secret_name=self.github_app.secret.name,
            webhook_secret_name=self.webhook_secret.secret.name,
            qdrant_snapshot_bucket=self.qdrant_snapshots.name,
            qdrant_role_arn=role(QDRANT, qdrant_statements(access)),
            qdrant_secrets_role_arn=role(QDRANT_SECRETS, qdrant_secrets_statements(access)),
            qdrant_api_key_secret_name=self.qdrant_api_key.secret.name,
        )
        outputs = (
            "artifact_bucket",
            "inference_log_bucket",
            "model_server_role_arn",
            "drift_job_role_arn",
            "qdrant_snapshot_bucket",
        )
        for name in (*outputs, "artifact_signing_key_arn"):
            TerraformOutput(self, name, value=getattr(self.outputs, name))
