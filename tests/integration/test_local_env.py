"""The local environment: real servers, health-checked, idempotent, data kept across restarts, secrets kept out."""

from __future__ import annotations

import uuid

import httpx
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


def test_every_secret_file_is_private_and_complete(local_env: None) -> None:
    from infra.local.paths import secrets_dir
    from infra.local.supervisor import main_conf

    files = sorted(secrets_dir().iterdir())
    names = {f.name for f in files}
    assert {"postgres_password", "s3_secret_key", "supervisor_password", *contracts.REGISTRY_USERS.values()} <= names
    for f in files:
        assert f.is_file() and not f.name.startswith("."), f"{f}: a leftover temporary file or a folder"
        assert f.stat().st_mode & 0o777 == 0o600, f"{f.name} is {oct(f.stat().st_mode & 0o777)}"
        assert f.read_text().strip(), f"{f.name} is empty"
    assert main_conf().stat().st_mode & 0o777 == 0o600  # it holds the supervisor control password


def _rpc(client: httpx.Client, url: str) -> httpx.Response:
    body = "<?xml version='1.0'?><methodCall><methodName>supervisor.getState</methodName></methodCall>"
    return client.post(url, content=body, headers={"Content-Type": "text/xml"})


def test_supervisor_control_interfaces_refuse_unauthenticated_requests(local_env: None) -> None:
    from core.policy import policy
    from infra.local.secrets import get_secret
    from infra.local.supervisor import SUPERVISOR_SECRET, SUPERVISOR_USER

    url = f"http://127.0.0.1:{policy().ports.supervisor}/RPC2"
    good = (SUPERVISOR_USER, get_secret(SUPERVISOR_SECRET))
    with httpx.Client(timeout=10) as client:
        assert _rpc(client, url).status_code == 401
    with httpx.Client(timeout=10, auth=(SUPERVISOR_USER, "wrong")) as client:
        assert _rpc(client, url).status_code == 401
    with httpx.Client(timeout=10, auth=good) as client:
        ok = _rpc(client, url)
        assert ok.status_code == 200 and "RUNNING" in ok.text
    sock = state_dir() / "supervisor" / "supervisor.sock"
    assert sock.stat().st_mode & 0o777 == 0o700
    with httpx.Client(transport=httpx.HTTPTransport(uds=str(sock)), timeout=10) as client:
        assert _rpc(client, "http://localhost/RPC2").status_code == 401
    with httpx.Client(transport=httpx.HTTPTransport(uds=str(sock)), timeout=10, auth=good) as client:
        assert _rpc(client, "http://localhost/RPC2").status_code == 200
