"""The artifact store of the local runtime: an S3 API (`rclone serve s3`, persistent on disk, access keys).

MLflow proxies its artifacts to `contracts.ARTIFACT_BUCKET`; the model servers write the inference log to
`contracts.INFERENCE_LOG_BUCKET`. Other programs reach it with `client_env()` plus the keys in `SECRET_ENV`.
"""

from __future__ import annotations

from core import contracts, endpoints
from core.policy import policy
from infra.local.paths import sub
from infra.local.secrets import get_secret
from infra.local.supervisor import VENV_BIN, Program


def credentials() -> tuple[str, str]:
    return get_secret("s3_access_key"), get_secret("s3_secret_key")


def program() -> Program:
    root = sub("s3")
    port = policy().ports.s3
    return Program(
        name="s3",
        command=[
            str(VENV_BIN / "rclone"),
            "serve",
            "s3",
            str(root),
            "--addr",
            f"127.0.0.1:{port}",
            "--vfs-cache-mode",
            "off",
            "--force-path-style=true",
            "--etag-hash",
            "MD5",
            "--config",
            "/dev/null",
            "--log-level",
            "NOTICE",
        ],
        # rclone reads list flags from the environment as CSV: quote the pair so it stays one entry.
        secret_env={"RCLONE_AUTH_KEY": '"{s3_access_key},{s3_secret_key}"'},
        priority=10,
        health_tcp=port,
    )


def client():  # type: ignore[no-untyped-def]
    import boto3
    from botocore.config import Config

    access, secret = credentials()
    return boto3.client(
        "s3",
        endpoint_url=endpoints.s3_url(),
        aws_access_key_id=access,
        aws_secret_access_key=secret,
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3}),
    )


def ensure_buckets() -> None:
    s3 = client()
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    for bucket in (contracts.ARTIFACT_BUCKET, contracts.INFERENCE_LOG_BUCKET):
        if bucket not in existing:
            s3.create_bucket(Bucket=bucket)


def client_env() -> dict[str, str]:
    """Plain environment for a process that talks to the local S3 API (pair with `SECRET_ENV`)."""
    return {
        "MLFLOW_S3_ENDPOINT_URL": endpoints.s3_url(),
        "AWS_ENDPOINT_URL_S3": endpoints.s3_url(),
        "AWS_DEFAULT_REGION": "us-east-1",
    }


SECRET_ENV = {"AWS_ACCESS_KEY_ID": "{s3_access_key}", "AWS_SECRET_ACCESS_KEY": "{s3_secret_key}"}
