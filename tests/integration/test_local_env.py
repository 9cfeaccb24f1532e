"""The local environment: real servers, health-checked, idempotent, data kept across restarts, secrets kept out."""

from __future__ import annotations

import uuid

import pytest

from core import contracts, endpoints
from infra.local.paths import state_dir
from tests.integration.conftest import mlp

pytestmark = pytest.mark.integration


def test_status_reports_every_core_server_healthy(local_env: None) -> None:
    out = mlp("env", "status").stdout
    for server in ("postgres", "s3", "mlflow"):
        line = next(line for line in out.splitlines() if f" {server} " in line)
        assert "healthy" in line and "unhealthy" not in line, line


def test_up_is_idempotent_and_fast_when_running(local_env: None) -> None:
    result = mlp("env", "up")
    assert "Local environment up" in result.stderr


def test_object_store_keeps_data_across_a_restart(local_env: None) -> None:
    from infra.local.s3 import client as s3_client
    from infra.local.s3 import program as s3_program
    from infra.local.supervisor import ctl, wait_healthy

    key, body = f"restart-check/{uuid.uuid4().hex}", uuid.uuid4().bytes
    s3_client().put_object(Bucket=contracts.ARTIFACT_BUCKET, Key=key, Body=body)
    ctl("restart", "s3")
    wait_healthy(s3_program())
    assert s3_client().get_object(Bucket=contracts.ARTIFACT_BUCKET, Key=key)["Body"].read() == body


def test_object_store_refuses_wrong_keys(local_env: None) -> None:
    import boto3
    from botocore.exceptions import ClientError

    bad = boto3.client("s3", endpoint_url=endpoints.s3_url(), aws_access_key_id="nobody",
                       aws_secret_access_key="wrong", region_name="us-east-1")  # fmt: skip
    with pytest.raises(ClientError):
        bad.list_buckets()


def test_secrets_stay_out_of_configs_and_process_lists(local_env: None) -> None:
    import subprocess

    from infra.local.secrets import get_secret

    secrets = [get_secret(n) for n in ("s3_secret_key", "postgres_password", "mlflow_fernet_key")]
    configs = "".join(p.read_text() for p in (state_dir() / "supervisor").rglob("*.conf"))
    processes = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    for secret in secrets:
        assert secret not in configs
        assert secret not in processes
    assert oct((state_dir() / "secrets").stat().st_mode & 0o777) == "0o700"
