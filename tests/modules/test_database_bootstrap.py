"""MLflow's database role (not the RDS master), created by the bootstrap Job's script: run for real against a
throwaway PostgreSQL server whose "master" is, as on RDS, a CREATEDB/CREATEROLE user and no superuser."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg2
import pytest

from infra.local.postgres import PG_BIN
from modules import database_bootstrap as boot
from modules.k8s import validate

MASTER, MASTER_PW = "rdsmaster", "master-secret-1"


def _as_postgres(*cmd: str) -> None:
    subprocess.run(["runuser", "-u", "postgres", "--", *cmd], check=True, capture_output=True, timeout=120)


@pytest.fixture(scope="module")
def server() -> Iterator[Path]:
    """A PostgreSQL server on a unix socket only (no port to collide with), the master role and MLflow's database
    as an environment that ran MLflow as the master has them (a table and a sequence the master owns)."""
    root = Path(tempfile.mkdtemp(prefix="pg-", dir=os.environ.get("MLP_STATE_DIR") or None))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    shutil.chown(root, "postgres")
    shutil.chown(sock, "postgres")
    root.chmod(0o755)
    _as_postgres(str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres")
    # The set-up trusts the superuser over the socket; everyone else (the master, the app role) needs a password.
    (data / "pg_hba.conf").write_text("local all postgres trust\nlocal all all md5\n")
    _as_postgres(
        str(PG_BIN / "pg_ctl"),
        "-D",
        str(data),
        "-w",
        "-o",
        f"-k {sock} -c listen_addresses=''",
        "start",
        "-l",
        str(root / "log"),
    )
    try:
        setup = psycopg2.connect(host=str(sock), dbname="postgres", user="postgres")
        setup.autocommit = True
        with setup.cursor() as cur:
            cur.execute(f"CREATE ROLE {MASTER} LOGIN CREATEDB CREATEROLE PASSWORD '{MASTER_PW}'")
            cur.execute(f"CREATE DATABASE mlflow OWNER {MASTER}")
        setup.close()
        legacy = psycopg2.connect(host=str(sock), dbname="mlflow", user=MASTER, password=MASTER_PW)
        with legacy, legacy.cursor() as cur:
            cur.execute("CREATE TABLE experiments (id serial PRIMARY KEY, name text)")
        legacy.close()
        yield sock
    finally:
        _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "stop")
        shutil.rmtree(root, ignore_errors=True)


def _run(sock: Path, app_user: str, app_password: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ["PATH"],
        "PGHOST": str(sock),
        "PGSSLMODE": "disable",  # a unix socket here; the Job sets verify-full with the RDS bundle
        "MASTER_USER": MASTER,
        "MASTER_PASSWORD": MASTER_PW,
        "APP_USER": app_user,
        "APP_PASSWORD": app_password,
        "DATABASES": "mlflow,mlflow_auth",
    }
    return subprocess.run(
        [sys.executable, str(boot.SCRIPT)], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def _login(sock: Path, database: str, password: str) -> psycopg2.extensions.connection:
    return psycopg2.connect(host=str(sock), dbname=database, user=boot.APP_ROLE, password=password)


def test_the_app_role_owns_mlflows_databases_and_is_no_master(server: Path) -> None:
    done = _run(server, boot.APP_ROLE, "app-pw-1")
    assert done.returncode == 0, done.stderr
    assert "app-pw-1" not in done.stdout + done.stderr
    for database in ("mlflow", "mlflow_auth"):
        conn = _login(server, database, "app-pw-1")
        with conn, conn.cursor() as cur:
            cur.execute("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()")
            assert cur.fetchone() == (boot.APP_ROLE,)
            cur.execute("SELECT rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = current_user")
            assert cur.fetchone() == (False, False, False)
            cur.execute("CREATE TABLE IF NOT EXISTS migration_probe (x int)")  # MLflow's migrations create tables
        conn.close()
    # The table and sequence the master created before are the app role's now: its migrations can alter them.
    conn = _login(server, "mlflow", "app-pw-1")
    with conn, conn.cursor() as cur:
        cur.execute("ALTER TABLE experiments ADD COLUMN IF NOT EXISTS probe int")
        cur.execute("SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = 'experiments_id_seq'")
        assert cur.fetchone() == (boot.APP_ROLE,)
    conn.close()


def test_a_rerun_sets_the_new_password_and_retires_the_old(server: Path) -> None:
    assert _run(server, boot.APP_ROLE, "app-pw-1").returncode == 0
    again = _run(server, boot.APP_ROLE, "app-pw-2")
    assert again.returncode == 0 and "updated" in again.stdout
    _login(server, "mlflow", "app-pw-2").close()
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        _login(server, "mlflow", "app-pw-1")


def test_the_master_is_refused_as_the_app_user(server: Path) -> None:
    done = _run(server, MASTER, MASTER_PW)
    assert done.returncode == 2 and "must not be the master" in done.stderr


def _manifests() -> list[dict[str, Any]]:
    return boot.manifests(
        namespace="mlflow",
        region="us-east-1",
        image="burakince/mlflow:3.14.0",
        db_host="mlp-dev-mlflow.abc.us-east-1.rds.amazonaws.com",
        master_secret_arn="arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!db-1",
        app_secret="mlflow-db",
        role_arn="arn:aws:iam::123456789012:role/mlp-dev-mlflow-db-bootstrap",
        databases=["mlflow", "mlflow_auth"],
    )


def test_the_job_and_its_store_are_schema_valid_and_only_the_job_sees_the_master() -> None:
    manifests = _manifests()
    assert [p for m in manifests for p in validate.validate_manifest(m)] == []
    (job,) = [m for m in manifests if m["kind"] == "Job"]
    pod = job["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == boot.NAME
    (store,) = [m for m in manifests if m["kind"] == "SecretStore"]
    assert store["spec"]["provider"]["aws"]["auth"]["jwt"]["serviceAccountRef"]["name"] == boot.NAME
    (master,) = [m for m in manifests if m["kind"] == "ExternalSecret"]
    assert master["spec"]["secretStoreRef"]["name"] == store["metadata"]["name"]
    assert master["spec"]["target"]["name"] == boot.MASTER_SECRET
    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    assert env["MASTER_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == boot.MASTER_SECRET
    assert env["APP_USER"]["value"] == boot.APP_ROLE
    assert env["PGSSLMODE"]["value"] == "verify-full" and env["PGSSLROOTCERT"]["value"] == boot.CA_FILE
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "post-install,post-upgrade"
    (script,) = [m for m in manifests if m["kind"] == "ConfigMap"]
    assert script["data"][boot.SCRIPT.name] == boot.SCRIPT.read_text()  # the script tested above, as shipped


def test_the_ca_bundle_comes_from_aws_over_verified_https_into_a_read_only_mount() -> None:
    fetch = boot.fetch_ca_container("burakince/mlflow:3.14.0")
    code = fetch["command"][-1]
    assert boot.RDS_CA_URL.startswith("https://truststore.pki.rds.amazonaws.com/") and boot.RDS_CA_URL in code
    assert "ssl.create_default_context(cadata=" in code  # refused unless it parses as certificates
    (job,) = [m for m in _manifests() if m["kind"] == "Job"]
    (main,) = job["spec"]["template"]["spec"]["containers"]
    assert {"name": boot.CA_VOLUME, "mountPath": boot.CA_DIR, "readOnly": True} in main["volumeMounts"]
