"""Loopback URLs of the local runtime, derived from the policy's ports (bucket names: `core.contracts`)."""

from __future__ import annotations

from core.policy import Policy, policy

HOST = "127.0.0.1"


def _p(p: Policy | None) -> Policy:
    return p or policy()


def mlflow_url(p: Policy | None = None) -> str:
    return f"http://{HOST}:{_p(p).ports.mlflow}"


def s3_url(p: Policy | None = None) -> str:
    return f"http://{HOST}:{_p(p).ports.s3}"


def prometheus_url(p: Policy | None = None) -> str:
    return f"http://{HOST}:{_p(p).ports.prometheus}"


def pushgateway_url(p: Policy | None = None) -> str:
    return f"http://{HOST}:{_p(p).ports.pushgateway}"


def gateway_url(p: Policy | None = None) -> str:
    """HTTPS, verified with the local CA bundle (`infra.local.tls.ca_bundle()`)."""
    return f"https://{HOST}:{_p(p).ports.gateway}"


def gateway_http_url(p: Policy | None = None) -> str:
    """The gateway's plain-HTTP port: every request gets a 308 to `gateway_url`."""
    return f"http://{HOST}:{_p(p).ports.gateway_http}"


def webhook_url(p: Policy | None = None) -> str:
    return f"http://{HOST}:{_p(p).ports.webhook}"


def alertmanager_url(p: Policy | None = None) -> str:
    return f"http://{HOST}:{_p(p).ports.alertmanager}"


def postgres_dsn(password: str, p: Policy | None = None, database: str = "mlflow") -> str:
    """SQLAlchemy URI of an MLflow database (the store, or `mlflow_auth`: the auth app's users and permissions);
    pass the password (or a secret template) explicitly."""
    return f"postgresql+psycopg2://mlflow:{password}@{HOST}:{_p(p).ports.postgres}/{database}"


def model_server_port(slot: int, p: Policy | None = None) -> int:
    ports = _p(p).ports
    if not 0 <= slot < ports.model_server_slots:
        last = ports.model_server_slots - 1
        raise ValueError(f"model server slot {slot} outside 0..{last} (policy ports.model_server_slots)")
    return ports.model_server_base + slot
