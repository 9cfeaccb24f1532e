"""What each platform workload may touch in AWS, scoped to exact bucket prefixes and the one secret it needs.

| workload | service account | may |
|---|---|---|
| MLflow server | mlflow/mlflow | read/write artifacts under `mlflow/`, read the RDS master secret |
| model servers | model-serving/model-server | read models under `mlflow/`, write inference logs under `model=` |
| drift job | model-serving/drift-job | read inference logs under `model=`, read `mlflow/`, write `reports/drift/` |
"""

from __future__ import annotations

from pydantic import Field

from core.promql import SERVING_NAMESPACE
from modules.common import Props, Statement

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


class DataAccess(Props):
    artifact_bucket_arn: str
    inference_log_bucket_arn: str
    kms_key_arn: str
    db_secret_arn: str = Field(description="RDS-managed master secret")
    registry_secret_arn: str = Field(description="MLflow registry users' passwords (modules/registry_auth.py)")


def _list(bucket_arn: str, prefix: str) -> Statement:
    return {
        "Sid": "List" + "".join(ch for ch in prefix.title() if ch.isalnum()),
        "Effect": "Allow",
        "Action": "s3:ListBucket",
        "Resource": bucket_arn,
        "Condition": {"StringLike": {"s3:prefix": [f"{prefix}*"]}},
    }


def _kms(key_arn: str) -> Statement:
    return {
        "Sid": "UseTheDataKey",
        "Effect": "Allow",
        "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
        "Resource": key_arn,
    }


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
            "Resource": [a.db_secret_arn, a.registry_secret_arn],
        },
        _kms(a.kms_key_arn),
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
        _kms(a.kms_key_arn),
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
        _kms(a.kms_key_arn),
    ]
