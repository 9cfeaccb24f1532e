"""PostgreSQL, MLflow's metadata store: the Debian package's server, run as `postgres` on a project data dir.

Loopback only; the `mlflow` role's password lives in the secret store and never appears in a process list.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from core.policy import policy
from infra.local.paths import state_dir
from infra.local.secrets import get_secret
from infra.local.supervisor import EnvironmentError_, Program

PG_VERSION = "15"
PG_BIN = Path(f"/usr/lib/postgresql/{PG_VERSION}/bin")
MLFLOW_DATABASE = "mlflow"  # the tracking and registry store
AUTH_DATABASE = "mlflow_auth"  # MLflow's basic-auth app: users and permissions (its own database)
DATABASES = (MLFLOW_DATABASE, AUTH_DATABASE)


def _pg_dirs() -> tuple[Path, Path]:
    data, sock = state_dir() / "postgres" / "data", state_dir() / "postgres" / "run"
    return data, sock


def _as_postgres(*cmd: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    # initdb and the server refuse to run as root: run them as the Debian `postgres` user.
    return subprocess.run(
        ["runuser", "-u", "postgres", "--", *cmd], input=stdin, capture_output=True, text=True, timeout=120
    )


def init() -> None:
    """Create the cluster once (idempotent): its own data dir, loopback only."""
    if not (PG_BIN / "initdb").exists():
        raise EnvironmentError_(
            f"PostgreSQL {PG_VERSION} is not installed ({PG_BIN}/initdb missing). Run `make bootstrap`."
        )
    data, sock = _pg_dirs()
    for d in (data.parent, sock):
        d.mkdir(parents=True, exist_ok=True)
        shutil.chown(d, "postgres", "postgres")
    if (data / "PG_VERSION").exists():
        return
    data.mkdir(parents=True, exist_ok=True)
    shutil.chown(data, "postgres", "postgres")
    data.chmod(0o700)
    result = _as_postgres(
        str(PG_BIN / "initdb"),
        "-D",
        str(data),
        "--auth-local=peer",
        "--auth-host=scram-sha-256",
        "--username=postgres",
        "--encoding=UTF8",
    )
    if result.returncode != 0:
        raise EnvironmentError_(f"initdb failed: {result.stderr.strip()}")


def program() -> Program:
    data, sock = _pg_dirs()
    port = policy().ports.postgres
    return Program(
        name="postgres",
        command=[
            str(PG_BIN / "postgres"),
            "-D",
            str(data),
            "-p",
            str(port),
            "-k",
            str(sock),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "max_connections=100",
            "-c",
            "shared_buffers=128MB",
        ],
        user="postgres",
        priority=10,
        stopsignal="INT",  # fast shutdown
        stopwaitsecs=30,
        health_tcp=port,
    )


def provision_database() -> None:
    """Create the `mlflow` role and its databases (idempotent); the password comes from the secret store."""
    _, sock = _pg_dirs()
    port = str(policy().ports.postgres)
    password = get_secret("postgres_password").replace("'", "''")
    sql = f"""
    DO $$ BEGIN
      IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'mlflow') THEN
        CREATE ROLE mlflow LOGIN PASSWORD '{password}';
      ELSE
        ALTER ROLE mlflow PASSWORD '{password}';
      END IF;
    END $$;
    """
    # SQL goes through stdin so the password never appears in a process list.
    res = _as_postgres("psql", "-h", str(sock), "-p", port, "-v", "ON_ERROR_STOP=1", "-q", "-d", "postgres", stdin=sql)
    if res.returncode != 0:
        raise EnvironmentError_(f"could not create the mlflow role: {res.stderr.strip()}")
    for database in DATABASES:
        _create_database(sock, port, database)


def _create_database(sock: Path, port: str, database: str) -> None:
    exists = _as_postgres(
        "psql",
        "-h",
        str(sock),
        "-p",
        port,
        "-tA",
        "-d",
        "postgres",
        "-c",
        f"SELECT 1 FROM pg_database WHERE datname = '{database}'",
    )
    if exists.stdout.strip() != "1":
        res = _as_postgres("createdb", "-h", str(sock), "-p", port, "-O", "mlflow", database)
        if res.returncode != 0:
            raise EnvironmentError_(f"could not create the {database} database: {res.stderr.strip()}")
