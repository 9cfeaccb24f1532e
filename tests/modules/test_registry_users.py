"""The cluster's registry users, provisioned by the `mlflow-registry-users` Job's script: run for real against an MLflow
server with its basic-auth app (sqlite stores, a free loopback port), as the Job runs it against the cluster's."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from core import contracts
from modules import registry_users
from modules.k8s import validate

ADMIN_PW = "admin-pw-for-the-test"
PASSWORDS = {
    contracts.REGISTRY_RELEASE_BOT: "bot-password-0001",
    contracts.REGISTRY_MODEL_SERVER: "server-password-0001",
    contracts.REGISTRY_READER: "reader-password-0001",
}
MODEL = "review-polarity-classifier"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def mlflow_url() -> Iterator[str]:
    root = Path(tempfile.mkdtemp(prefix="mlflow-", dir=os.environ.get("MLP_STATE_DIR") or None))
    ini = root / "auth.ini"
    ini.write_text(
        "[mlflow]\ndefault_permission = READ\n"
        f"database_uri = sqlite:///{root / 'auth.db'}\nadmin_username = {contracts.REGISTRY_ADMIN}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
    )
    port = _free_port()
    env = {
        **os.environ,
        contracts.MLFLOW_AUTH_CONFIG_VAR: str(ini),
        contracts.MLFLOW_AUTH_ADMIN_PASSWORD_VAR: ADMIN_PW,
        contracts.MLFLOW_FLASK_SECRET_KEY_VAR: "csrf-key-for-the-test",
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    }
    mlflow = Path(sys.executable).parent / "mlflow"
    cmd = [str(mlflow), "server", "--app-name", "basic-auth", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--workers", "1", "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}"]
    cmd += ["--default-artifact-root", str(root / "artifacts")]
    log = (root / "server.log").open("w")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=root)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(1)
        else:
            raise AssertionError(f"MLflow did not start: {(root / 'server.log').read_text()[-2000:]}")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
        shutil.rmtree(root, ignore_errors=True)


def _run(url: str, admin_pw: str = ADMIN_PW, passwords: dict[str, str] = PASSWORDS) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ["PATH"], "MLFLOW_URL": url, "MODEL_NAME": MODEL}
    env |= {"ADMIN_USER": contracts.REGISTRY_ADMIN, "ADMIN_PASSWORD": admin_pw}
    env |= {"BOT_USER": contracts.REGISTRY_RELEASE_BOT}
    env["USERS"] = ",".join(f"{u}={registry_users.password_var(u)}" for u in passwords)
    env |= {registry_users.password_var(u): pw for u, pw in passwords.items()}
    return subprocess.run(
        [sys.executable, str(registry_users.SCRIPT)], env=env, capture_output=True, text=True, timeout=300, check=False
    )


def _as(url: str, user: str, password: str) -> httpx.Client:
    return httpx.Client(base_url=url, auth=(user, password), timeout=30)


def _describe(client: httpx.Client) -> int:
    body: dict[str, Any] = {"name": MODEL, "description": "touched"}
    return client.patch("/api/2.0/mlflow/registered-models/update", json=body).status_code


def test_the_users_exist_and_only_the_bot_writes_the_model(mlflow_url: str) -> None:
    done = _run(mlflow_url)
    assert done.returncode == 0, done.stderr
    assert not any(pw in done.stdout + done.stderr for pw in [ADMIN_PW, *PASSWORDS.values()])
    for user, pw in PASSWORDS.items():
        with _as(mlflow_url, user, pw) as c:
            got = c.get("/api/2.0/mlflow/registered-models/get", params={"name": MODEL})
            assert got.status_code == 200, user  # every user reads
            assert _describe(c) == (200 if user == contracts.REGISTRY_RELEASE_BOT else 403), user
    with _as(mlflow_url, contracts.REGISTRY_READER, "wrong") as c:
        assert c.get("/api/2.0/mlflow/registered-models/get", params={"name": MODEL}).status_code == 401


def test_a_rerun_is_idempotent_and_applies_a_rotated_password(mlflow_url: str) -> None:
    rotated = {**PASSWORDS, contracts.REGISTRY_READER: "reader-password-0002"}
    again = _run(mlflow_url, passwords=rotated)
    assert again.returncode == 0, again.stderr
    assert "kept" in again.stdout and "created" not in again.stdout
    with _as(mlflow_url, contracts.REGISTRY_READER, "reader-password-0002") as c:
        assert c.get("/api/2.0/mlflow/registered-models/get", params={"name": MODEL}).status_code == 200
    with _as(mlflow_url, contracts.REGISTRY_READER, "reader-password-0001") as c:
        assert c.get("/api/2.0/mlflow/registered-models/get", params={"name": MODEL}).status_code == 401
    with _as(mlflow_url, contracts.REGISTRY_RELEASE_BOT, "bot-password-0001") as c:
        assert _describe(c) == 200


def test_a_wrong_admin_password_fails_with_what_to_check(mlflow_url: str) -> None:
    done = _run(mlflow_url, admin_pw="not-the-admins")
    assert done.returncode == 1
    assert "refused the admin credential (401)" in done.stderr and "ADMIN_PASSWORD" in done.stderr


def test_the_job_reads_every_password_from_its_external_secret() -> None:
    manifests = registry_users.manifests(namespace="mlflow", image="burakince/mlflow:3.14.0", remote_key="k")
    assert [p for m in manifests for p in validate.validate_manifest(m)] == []
    (secret,) = [m for m in manifests if m["kind"] == "ExternalSecret"]
    (job,) = [m for m in manifests if m["kind"] == "Job"]
    env = job["spec"]["template"]["spec"]["containers"][0]["env"]
    refs = {e["valueFrom"]["secretKeyRef"]["name"] for e in env if "valueFrom" in e}
    assert refs == {secret["spec"]["target"]["name"]}
    keys = {e["valueFrom"]["secretKeyRef"]["key"] for e in env if "valueFrom" in e}
    assert keys == {d["secretKey"] for d in secret["spec"]["data"]}
    assert len(keys) == len(contracts.REGISTRY_USERS)  # the admin and the three others
