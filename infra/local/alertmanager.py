"""Alertmanager as a supervised program of the local stack (see infra/local/stack.py).

Debian's `prometheus-alertmanager` on loopback (port `ports.alertmanager`), config and notification state
(silences, the notification log that stops repeats) in `<state>/alertmanager/`, gossip off (one instance). The
routes come from `core.alertmanager`; both receivers deliver to the platform's receiver
(`services/webhook`, route `contracts.ALERTMANAGER_ROUTE`), which writes the notification log `mlp alerts` reads.
Alertmanager authenticates with the bearer token of the secret store, read from the secret's own file
(`credentials_file`), so the token is in neither the config nor a process list.

`alerts()` and `alert_groups()` read Alertmanager's API v2 (CLI, tests).
"""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from core import alertmanager as routing
from core import contracts, endpoints
from core.endpoints import HOST
from core.policy import policy
from infra.local import webhook
from infra.local.paths import secrets_dir, state_dir
from infra.local.secrets import get_secret
from infra.local.supervisor import Program

BINARY = "/usr/bin/prometheus-alertmanager"
AMTOOL = "/usr/bin/amtool"
CONFIG_FILE = "alertmanager.yml"


def am_dir() -> Path:
    return state_dir() / "alertmanager"


def config_path() -> Path:
    return am_dir() / CONFIG_FILE


def token_file() -> Path:
    get_secret(contracts.ALERT_WEBHOOK_TOKEN_SECRET)  # created on first use, 0600, beside the other secrets
    return secrets_dir() / contracts.ALERT_WEBHOOK_TOKEN_SECRET


def _webhook_receiver(token: Path) -> dict[str, Any]:
    return {
        "webhook_configs": [
            {
                "url": webhook.alerts_url(),
                "send_resolved": True,  # the log shows when an alert stopped, not only when it started
                "http_config": {
                    "authorization": {"type": contracts.BEARER_SCHEME, "credentials_file": str(token)},
                },
            }
        ]
    }


def local_config(token: Path | None = None) -> dict[str, Any]:
    path = token or token_file()
    # One dict per receiver: a shared one would be written as a YAML anchor, harder to read for the on-call.
    return routing.config({name: _webhook_receiver(path) for name in routing.RECEIVERS})


def write_config(path: Path | None = None) -> Path:
    path = path or config_path()
    (am_dir() / "data").mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(local_config(), sort_keys=False)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return path


def check_config(path: Path) -> subprocess.CompletedProcess[str]:
    """`amtool check-config`: Alertmanager's own parser and validation of a config file."""
    return subprocess.run([AMTOOL, "check-config", str(path)], capture_output=True, text=True, timeout=60)


def routes_test(path: Path, labels: dict[str, str]) -> list[str]:
    """`amtool config routes test`: the receivers an alert with these labels is routed to."""
    args = [f"{k}={v}" for k, v in labels.items()]
    result = subprocess.run(
        [AMTOOL, "config", "routes", "test", f"--config.file={path}", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if result.returncode != 0:
        raise RuntimeError(f"amtool config routes test failed: {result.stderr.strip()}")
    return sorted(name.strip() for name in result.stdout.strip().split(",") if name.strip())


def program() -> Program:
    path = write_config()
    port = policy().ports.alertmanager
    return Program(
        name="alertmanager",
        command=[
            BINARY,
            f"--config.file={path}",
            f"--storage.path={am_dir() / 'data'}",
            f"--web.listen-address={HOST}:{port}",
            f"--web.external-url={endpoints.alertmanager_url()}",
            "--cluster.listen-address=",  # one instance: no gossip port
        ],
        priority=30,
        health_url=f"{endpoints.alertmanager_url()}/-/ready",
    )


def reload_alertmanager(timeout: float = 10) -> bool:
    """Ask a running Alertmanager to re-read its config; False if it is not running."""
    request = urllib.request.Request(f"{endpoints.alertmanager_url()}/-/reload", method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return 200 <= resp.status < 300
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace").strip()
        raise RuntimeError(f"Alertmanager refused the reload ({exc.code}: {detail}); run `mlp alerts check`") from exc
    except (urllib.error.URLError, OSError):
        return False


class AlertmanagerUnavailable(RuntimeError):
    pass


def _get(route: str, timeout: float) -> Any:
    url = f"{endpoints.alertmanager_url()}{route}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return json.loads(resp.read())
    except (urllib.error.URLError, OSError) as exc:
        raise AlertmanagerUnavailable(f"Alertmanager at {url} is not answering ({exc}); run `mlp env up`") from exc


def alerts(timeout: float = 10) -> list[dict[str, Any]]:
    """Every alert Alertmanager holds (firing, inhibited or silenced), API v2."""
    result: list[dict[str, Any]] = _get(contracts.ALERTMANAGER_API_ALERTS, timeout)
    return result


def alert_groups(timeout: float = 10) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = _get(contracts.ALERTMANAGER_API_GROUPS, timeout)
    return result


def post_alerts(items: list[dict[str, Any]], timeout: float = 10) -> None:
    """Post alerts as Prometheus does (tests; a manual check of the routes)."""
    request = urllib.request.Request(
        f"{endpoints.alertmanager_url()}{contracts.ALERTMANAGER_API_ALERTS}",
        data=json.dumps(items).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            resp.read()
    except urllib.error.HTTPError as exc:
        raise RuntimeError(f"Alertmanager refused the alerts ({exc.code}: {exc.read().decode()})") from exc
