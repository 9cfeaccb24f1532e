"""The local environment: real servers as supervised processes on loopback.

Core (this file): PostgreSQL (Debian package, run as `postgres`), an S3 API (`rclone serve s3`,
persistent on disk, access keys) and the MLflow server (PostgreSQL backend, artifacts proxied
to the S3 bucket). Other areas contribute their programs through `providers()`: the gateway,
Prometheus and its exporters, the webhook receiver. Model servers are added and removed at run
time by `infra.local.model_servers`.
"""

from __future__ import annotations

import importlib
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from core.policy import policy
from infra.local import endpoints
from infra.local.paths import state_dir, sub
from infra.local.secrets import get_secret
from infra.local.supervisor import VENV_BIN, Program, ensure_program, wait_healthy

PG_VERSION = "15"
PG_BIN = Path(f"/usr/lib/postgresql/{PG_VERSION}/bin")

# Modules that contribute programs to the local stack: each has `programs() -> list[Program]`.
PROVIDER_MODULES = (
    "services.gateway.local",
    "pipelines.observability.local",
    "services.webhook.local",
)


class EnvironmentError_(RuntimeError):
    """A local server could not be brought up; the message names it and what to do."""


# ---------------------------------------------------------------- PostgreSQL


def _pg_dirs() -> tuple[Path, Path]:
    data, sock = state_dir() / "postgres" / "data", state_dir() / "postgres" / "run"
    return data, sock


def _as_postgres(*cmd: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    # initdb and the server refuse to run as root: run them as the Debian `postgres` user.
    return subprocess.run(
        ["runuser", "-u", "postgres", "--", *cmd], input=stdin, capture_output=True, text=True, timeout=120
    )


def init_postgres() -> None:
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


def postgres_program() -> Program:
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
    """Create the `mlflow` role and database (idempotent); the password comes from the secret store."""
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
        "SELECT 1 FROM pg_database WHERE datname = 'mlflow'",
    )
    if exists.stdout.strip() != "1":
        res = _as_postgres("createdb", "-h", str(sock), "-p", port, "-O", "mlflow", "mlflow")
        if res.returncode != 0:
            raise EnvironmentError_(f"could not create the mlflow database: {res.stderr.strip()}")


# ---------------------------------------------------------------- S3 API


def s3_credentials() -> tuple[str, str]:
    return get_secret("s3_access_key"), get_secret("s3_secret_key")


def s3_program() -> Program:
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


def s3_client():  # type: ignore[no-untyped-def]
    import boto3
    from botocore.config import Config

    access, secret = s3_credentials()
    return boto3.client(
        "s3",
        endpoint_url=endpoints.s3_url(),
        aws_access_key_id=access,
        aws_secret_access_key=secret,
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3}),
    )


def ensure_buckets() -> None:
    client = s3_client()
    existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
    for bucket in (endpoints.ARTIFACT_BUCKET, endpoints.INFERENCE_LOG_BUCKET):
        if bucket not in existing:
            client.create_bucket(Bucket=bucket)


def s3_env() -> dict[str, str]:
    """Plain environment for a process that talks to the local S3 API (pair with `S3_SECRET_ENV`)."""
    return {
        "MLFLOW_S3_ENDPOINT_URL": endpoints.s3_url(),
        "AWS_ENDPOINT_URL_S3": endpoints.s3_url(),
        "AWS_DEFAULT_REGION": "us-east-1",
    }


S3_SECRET_ENV = {"AWS_ACCESS_KEY_ID": "{s3_access_key}", "AWS_SECRET_ACCESS_KEY": "{s3_secret_key}"}


# ---------------------------------------------------------------- MLflow


def mlflow_program() -> Program:
    port = policy().ports.mlflow
    env = {
        **s3_env(),
        "MLFLOW_ARTIFACTS_DESTINATION": f"s3://{endpoints.ARTIFACT_BUCKET}",
        # Start-up ~13 s and ~0.6 GB instead of ~40 s and 2.7 GB (see docs/decisions).
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
        "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
        "MLFLOW_TRACKING_DIR": str(sub("mlflow")),
    }
    return Program(
        name="mlflow",
        command=[
            str(VENV_BIN / "mlflow"),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--serve-artifacts",
        ],
        env=env,
        secret_env={
            **S3_SECRET_ENV,
            "MLFLOW_BACKEND_STORE_URI": endpoints.postgres_dsn(password="{postgres_password}"),
            "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY": "{mlflow_fernet_key}",
        },
        priority=20,
        stopwaitsecs=20,
        startsecs=5,
        health_url=f"{endpoints.mlflow_url()}/health",
    )


# ---------------------------------------------------------------- the whole stack


@dataclass(frozen=True)
class Step:
    name: str
    run: Callable[[], None]


def core_programs() -> list[Program]:
    return [postgres_program(), s3_program(), mlflow_program()]


def provided_programs() -> list[Program]:
    programs: list[Program] = []
    for module in PROVIDER_MODULES:
        programs.extend(importlib.import_module(module).programs())
    return programs


def all_programs() -> list[Program]:
    return core_programs() + provided_programs()


def _start(program: Program, timeout: float = 90) -> None:
    ensure_program(program)
    wait_healthy(program, timeout=timeout)


def up_steps() -> list[Step]:
    """The ordered start-up; each step is idempotent, so `up` may run any number of times."""
    pg, s3, mlflow = core_programs()
    steps = [
        Step("initialise PostgreSQL data dir", init_postgres),
        Step("start PostgreSQL", lambda: _start(pg)),
        Step("create the mlflow database", provision_database),
        Step("start the S3 API", lambda: _start(s3)),
        Step("create buckets", ensure_buckets),
        Step("start MLflow (migrates the schema on first start)", lambda: _start(mlflow, timeout=180)),
    ]
    for program in provided_programs():
        steps.append(Step(f"start {program.name}", lambda p=program: _start(p)))  # type: ignore[misc]
    return steps
