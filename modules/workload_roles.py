"""What each platform workload may touch in AWS, scoped to exact bucket prefixes and the one secret it needs.

| workload | service account | may |
|---|---|---|
| MLflow server | mlflow/mlflow | read/write artifacts under `mlflow/`, read its own database role's secret |
| database bootstrap Job | mlflow/mlflow-db-bootstrap | read the RDS master secret (nothing else) |
| model servers | model-serving/model-server | read models under `mlflow/`, write inference logs under `model=` |
| drift job | model-serving/drift-job | read inference logs under `model=`, read `mlflow/`, write `reports/drift/` |
| Alertmanager's SecretStore | monitoring/alertmanager-secrets | read the receivers' secret (modules/alerting.py) |
| release runners | arc-runners/mlp-release-runner | read the model server images' digests in ECR (nothing else) |
| drift runners | arc-runners/mlp-drift-runner | what the drift job may (the drift workflow runs its command) |
| platform secret store | external-secrets/platform-secrets | read the registry, GitHub App, webhook, Qdrant secrets |
| Qdrant server | qdrant/qdrant | list, read, write and delete its snapshots in its own bucket (nothing else) |
| Qdrant's SecretStore | qdrant/qdrant-secrets | read the Qdrant API key's secret (modules/qdrant.py) |
"""

from __future__ import annotations

from pydantic import Field

from core.promql import SERVING_NAMESPACE
from modules.cluster_services import MONITORING_NAMESPACE, QDRANT_NAMESPACE, QDRANT_RELEASE
from modules.common import Props, Statement
from modules.k8s.platform import RUNNER_NAMESPACE  # infra/config/versions.yaml arc_runner_set

ARTIFACT_PREFIX = "mlflow/"
INFERENCE_LOG_PREFIX = "model="  # keys: model=<name>/version=<N>/date=YYYY-MM-DD/<hour>-<uuid>.jsonl.gz
DRIFT_REPORT_PREFIX = "reports/drift/"


class WorkloadIdentity(Props):
    role_suffix: str
    namespace: str
    service_account: str


MLFLOW = WorkloadIdentity(role_suffix="mlflow", namespace="mlflow", service_account="mlflow")
MODEL_SERVER = WorkloadIdentity(role_suffix="model-server", namespace=SERVING_NAMESPACE, service_account="model-server")
DRIFT_JOB = WorkloadIdentity(role_suffix="drift-job", namespace=SERVING_NAMESPACE, service_account="drift-job")
# External Secrets reads the Alertmanager receivers' secret as this identity (charts/alertmanager-secrets).
ALERT_SECRETS = WorkloadIdentity(
    role_suffix="alertmanager-secrets", namespace=MONITORING_NAMESPACE, service_account="alertmanager-secrets"
)
RELEASE_RUNNER = WorkloadIdentity(
    role_suffix="release-runner", namespace=RUNNER_NAMESPACE, service_account="mlp-release-runner"
)
DRIFT_RUNNER = WorkloadIdentity(
    role_suffix="drift-runner", namespace=RUNNER_NAMESPACE, service_account="mlp-drift-runner"
)
# The identity External Secrets uses for the platform's ClusterSecretStore (modules/runners.py); no pod runs as it.
DB_BOOTSTRAP = WorkloadIdentity(
    role_suffix="mlflow-db-bootstrap", namespace="mlflow", service_account="mlflow-db-bootstrap"
)
PLATFORM_SECRETS = WorkloadIdentity(
    role_suffix="platform-secrets", namespace="external-secrets", service_account="platform-secrets"
)
# The qdrant chart names its ServiceAccount after its fullname, the release name (modules/qdrant.py).
QDRANT = WorkloadIdentity(role_suffix="qdrant", namespace=QDRANT_NAMESPACE, service_account=QDRANT_RELEASE)
# External Secrets reads the Qdrant API key for the Qdrant namespace as this identity (charts/qdrant-secrets).
QDRANT_SECRETS = WorkloadIdentity(
    role_suffix="qdrant-secrets", namespace=QDRANT_NAMESPACE, service_account="qdrant-secrets"
)


class DataAccess(Props):
    region: str
    artifact_bucket_arn: str
    artifact_key_arn: str = Field(description="The artifact bucket's own KMS key")
    inference_log_bucket_arn: str
    inference_log_key_arn: str = Field(description="The inference-log bucket's own KMS key")
    db_secret_arn: str = Field(description="The RDS-managed master secret: only the bootstrap Job reads it")
    db_app_secret_arn: str = Field(description="MLflow's own database role's password (modules/database_bootstrap.py)")
    secret_key_arn: str = Field(description="The KMS key of the platform's secrets in Secrets Manager")
    registry_secret_arn: str = Field(description="MLflow registry users' passwords (modules/registry_auth.py)")
    operator_secret_arns: list[str] = Field(
        default_factory=list, description="GitHub App and webhook receiver secrets (modules/operator_secrets.py)"
    )
    image_repository_arns: list[str] = Field(
        default_factory=list, description="ECR repositories of the images a release deploys (core.images)"
    )
    qdrant_snapshot_bucket_arn: str = Field(description="The Qdrant server's snapshot bucket")
    qdrant_snapshot_key_arn: str = Field(description="That bucket's own KMS key")
    qdrant_api_key_secret_arn: str = Field(description="The Qdrant API key's secret (modules/qdrant.py)")


def _list(bucket_arn: str, prefix: str) -> Statement:
    return {
        "Sid": "List" + "".join(ch for ch in prefix.title() if ch.isalnum()),
        "Effect": "Allow",
        "Action": "s3:ListBucket",
        "Resource": bucket_arn,
        "Condition": {"StringLike": {"s3:prefix": [f"{prefix}*"]}},
    }


def _kms(sid: str, key_arn: str, service: str, region: str, actions: tuple[str, ...]) -> Statement:
    """Use of one store's key, only through that store's service: the role cannot decrypt a ciphertext it
    obtained some other way (a copied object, a leaked blob) by calling KMS directly."""
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Action": list(actions),
        "Resource": key_arn,
        "Condition": {"StringEquals": {"kms:ViaService": f"{service}.{region}.amazonaws.com"}},
    }


READ = ("kms:Decrypt",)
WRITE = ("kms:Decrypt", "kms:GenerateDataKey")  # multipart uploads decrypt the data key too


def _artifact_key(a: DataAccess, actions: tuple[str, ...]) -> Statement:
    return _kms("ArtifactKeyThroughS3", a.artifact_key_arn, "s3", a.region, actions)


def _log_key(a: DataAccess, actions: tuple[str, ...]) -> Statement:
    return _kms("InferenceLogKeyThroughS3", a.inference_log_key_arn, "s3", a.region, actions)


def mlflow_statements(a: DataAccess) -> list[Statement]:
    return [
        _list(a.artifact_bucket_arn, ARTIFACT_PREFIX),
        {
            "Sid": "ArtifactsReadWrite",
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
            "Resource": f"{a.artifact_bucket_arn}/{ARTIFACT_PREFIX}*",
        },
        {
            "Sid": "DatabaseCredentials",
            "Effect": "Allow",
            "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
            "Resource": [a.db_app_secret_arn, a.registry_secret_arn],
        },
        _artifact_key(a, WRITE),
        _kms("SecretKeyThroughSecretsManager", a.secret_key_arn, "secretsmanager", a.region, READ),
    ]


def model_server_statements(a: DataAccess) -> list[Statement]:
    return [
        _list(a.artifact_bucket_arn, ARTIFACT_PREFIX),
        {
            "Sid": "ReadModels",
            "Effect": "Allow",
            "Action": ["s3:GetObject"],
            "Resource": f"{a.artifact_bucket_arn}/{ARTIFACT_PREFIX}*",
        },
        {
            "Sid": "WriteInferenceLogs",
            "Effect": "Allow",
            "Action": ["s3:PutObject"],
            "Resource": f"{a.inference_log_bucket_arn}/{INFERENCE_LOG_PREFIX}*",
        },
        _artifact_key(a, READ),
        _log_key(a, WRITE),
    ]


def drift_job_statements(a: DataAccess) -> list[Statement]:
    return [
        _list(a.inference_log_bucket_arn, INFERENCE_LOG_PREFIX),
        {
            "Sid": "ReadInferenceLogs",
            "Effect": "Allow",
            "Action": ["s3:GetObject"],
            "Resource": f"{a.inference_log_bucket_arn}/{INFERENCE_LOG_PREFIX}*",
        },
        _list(a.artifact_bucket_arn, ARTIFACT_PREFIX),
        {
            "Sid": "ReadReferenceArtifacts",
            "Effect": "Allow",
            "Action": ["s3:GetObject"],
            "Resource": f"{a.artifact_bucket_arn}/{ARTIFACT_PREFIX}*",
        },
        {
            "Sid": "WriteDriftReports",
            "Effect": "Allow",
            "Action": ["s3:PutObject"],
            "Resource": f"{a.artifact_bucket_arn}/{DRIFT_REPORT_PREFIX}*",
        },
        _artifact_key(a, WRITE),
        _log_key(a, READ),
    ]


def release_runner_statements(a: DataAccess) -> list[Statement]:
    """The release runs each image by the digest its push produced: it reads those digests, nothing else."""
    return [
        {
            "Sid": "ReadImageDigests",
            "Effect": "Allow",
            "Action": ["ecr:DescribeImages"],
            "Resource": a.image_repository_arns,
        }
    ]


def platform_secrets_statements(a: DataAccess) -> list[Statement]:
    """External Secrets' platform store: the secrets it copies into the serving and runner namespaces."""
    return [
        {
            "Sid": "PlatformSecrets",
            "Effect": "Allow",
            "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
            # The Qdrant key too: the RAG servers in the serving namespace read it (modules/k8s/rag.py).
            "Resource": [a.registry_secret_arn, *a.operator_secret_arns, a.qdrant_api_key_secret_arn],
        },
        _kms("SecretKeyThroughSecretsManager", a.secret_key_arn, "secretsmanager", a.region, READ),
    ]


def qdrant_statements(a: DataAccess) -> list[Statement]:
    """The Qdrant server stores, lists, restores and deletes its snapshots in its own bucket (multipart uploads, so
    aborting one too) through its own key; the whole bucket is its own, so no prefix narrows it."""
    return [
        {
            "Sid": "ListSnapshots",
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": a.qdrant_snapshot_bucket_arn,
        },
        {
            "Sid": "ReadWriteSnapshots",
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
            "Resource": f"{a.qdrant_snapshot_bucket_arn}/*",
        },
        _kms("SnapshotKeyThroughS3", a.qdrant_snapshot_key_arn, "s3", a.region, WRITE),
    ]


def qdrant_secrets_statements(a: DataAccess) -> list[Statement]:
    """The Qdrant namespace's SecretStore: the API key's secret, nothing else."""
    return [
        {
            "Sid": "QdrantApiKey",
            "Effect": "Allow",
            "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
            "Resource": a.qdrant_api_key_secret_arn,
        },
        _kms("SecretKeyThroughSecretsManager", a.secret_key_arn, "secretsmanager", a.region, READ),
    ]


def db_bootstrap_statements(a: DataAccess) -> list[Statement]:
    """The one workload that holds the RDS master credential: it creates MLflow's own role and nothing else."""
    return [
        {
            "Sid": "MasterCredential",
            "Effect": "Allow",
            "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
            "Resource": a.db_secret_arn,
        },
        _kms("SecretKeyThroughSecretsManager", a.secret_key_arn, "secretsmanager", a.region, READ),
    ]
