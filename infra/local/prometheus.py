"""Prometheus and its exporters as supervised programs of the local stack (see infra/local/stack.py).

- prometheus: config `<state>/prometheus/prometheus.yml`, TSDB `<state>/prometheus/data`, rules rendered by
  `core.rules`; model servers found through file_sd (`targets/model-servers.json`, written by
  `infra.local.model_servers`; `targets/generate-servers.json`, by `infra.local.generators`).
  `--web.enable-lifecycle` so a rule or config change is a `POST /-/reload`, not a restart.
- node-exporter: the machine (CPU, memory, disk).
- pushgateway: batch jobs push here (drift job, release executor); persisted so a restart keeps the last values.
- gateway-exporter: mtail turns the nginx JSON access log into per-upstream-version request and latency metrics.
- process-exporter: CPU and resident memory of each `bentoml serve` (workers included), grouped by its port.

`query`/`query_range` read whole result vectors and raise on a bad query (CLI, snapshots, tests); the release
analysis reads single numbers through `core.canary.PrometheusSource`, where no answer means missing data.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from core import endpoints, rules
from core import promql as q
from core.endpoints import HOST
from core.policy import policy
from infra.local.nginx import ACCESS_LOG
from infra.local.paths import logs_dir, state_dir
from infra.local.supervisor import Program

MTAIL_PROGS = Path(__file__).resolve().parent / "mtail"  # the gateway exporter's program: access log -> metrics
GATEWAY_ACCESS_LOG = ACCESS_LOG  # nginx writes it (infra/local/nginx.py), mtail reads it
# Matches the `bentoml serve ... --port N` command line of a model server; the group name carries the port,
# which the CPU/memory recording rules join to the file_sd target of the same port.
MODEL_SERVER_CMDLINE = r"bentoml.*\bserve\b.*--port[= ]?(?P<port>[0-9]+)"


def prom_dir() -> Path:
    return state_dir() / "prometheus"


def targets_file() -> Path:
    return prom_dir() / "targets" / "model-servers.json"


def rules_dir() -> Path:
    return prom_dir() / "rules"


def access_log() -> Path:
    return logs_dir() / GATEWAY_ACCESS_LOG


def _static(job: str, port: int, **extra: Any) -> dict[str, Any]:
    return {"job_name": job, "static_configs": [{"targets": [f"{HOST}:{port}"]}], **extra}


def prometheus_config() -> dict[str, Any]:
    ports = policy().ports
    interval = f"{policy().alerting.local_scrape_interval_seconds}s"
    return {
        "global": {"scrape_interval": interval, "evaluation_interval": interval, "scrape_timeout": interval},
        "rule_files": [str(rules_dir() / "*.yml")],
        # Firing alerts go to the local Alertmanager (infra/local/alertmanager.py), which routes and delivers them.
        "alerting": {
            "alertmanagers": [{"api_version": "v2", "static_configs": [{"targets": [f"{HOST}:{ports.alertmanager}"]}]}]
        },
        "scrape_configs": [
            _static("prometheus", ports.prometheus),
            _static("node", ports.node_exporter),
            # honor_labels: pushed series keep their own job/model labels instead of the gateway's.
            _static("pushgateway", ports.pushgateway, honor_labels=True),
            _static(q.GATEWAY_EXPORTER_JOB, ports.nginx_exporter),
            _static(q.PROCESS_EXPORTER_JOB, ports.process_exporter),
            {
                "job_name": q.MODEL_SERVER_JOB,
                # Every file in targets/: the classifier's servers and the generate servers (infra/local/generators.py).
                "file_sd_configs": [{"files": [str(targets_file().parent / "*.json")], "refresh_interval": interval}],
            },
        ],
    }


def process_exporter_config() -> dict[str, Any]:
    return {"process_names": [{"name": "model-server-{{.Matches.port}}", "cmdline": [MODEL_SERVER_CMDLINE]}]}


def write_configs() -> None:
    """Write every config file the programs read (idempotent: only changed files are rewritten)."""
    for sub in ("data", "targets", "rules"):
        (prom_dir() / sub).mkdir(parents=True, exist_ok=True)
    if not targets_file().exists():
        targets_file().write_text("[]\n")  # model_servers.write_targets fills it; Prometheus needs it to exist
    # mtail polls only files that exist when it starts; nginx appends to the same file later.
    access_log().touch(exist_ok=True)
    _write_if_changed(prom_dir() / "prometheus.yml", yaml.safe_dump(prometheus_config(), sort_keys=False))
    _write_if_changed(prom_dir() / "process-exporter.yml", yaml.safe_dump(process_exporter_config()))
    rules.render(rules_dir())


def _write_if_changed(path: Path, text: str) -> None:
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def reload_prometheus(timeout: float = 10) -> bool:
    """Ask a running Prometheus to re-read its config and rule files; False if it is not running."""
    request = urllib.request.Request(f"{endpoints.prometheus_url()}/-/reload", method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return 200 <= resp.status < 300
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace").strip()
        raise RuntimeError(f"Prometheus refused the reload ({exc.code}: {detail}); run `mlp obs check`") from exc
    except (urllib.error.URLError, OSError):
        return False


def programs() -> list[Program]:
    # Configs are rendered here because `env up` starts the programs right after asking for them.
    write_configs()
    ports = policy().ports
    prom = prom_dir()
    return [
        Program(
            name="prometheus",
            command=[
                "/usr/bin/prometheus",
                f"--config.file={prom / 'prometheus.yml'}",
                f"--storage.tsdb.path={prom / 'data'}",
                "--storage.tsdb.retention.time=7d",
                f"--web.listen-address={HOST}:{ports.prometheus}",
                "--web.enable-lifecycle",
            ],
            priority=30,
            stopwaitsecs=30,
            health_url=f"{endpoints.prometheus_url()}/-/ready",
        ),
        Program(
            name="node-exporter",
            command=[
                "/usr/bin/prometheus-node-exporter",
                f"--web.listen-address={HOST}:{ports.node_exporter}",
                "--collector.disable-defaults",
                *[f"--collector.{c}" for c in ("cpu", "meminfo", "loadavg", "filesystem", "diskstats", "netdev")],
            ],
            priority=30,
            health_url=f"http://{HOST}:{ports.node_exporter}/metrics",
        ),
        Program(
            name="pushgateway",
            command=[
                "/usr/bin/prometheus-pushgateway",
                f"--web.listen-address={HOST}:{ports.pushgateway}",
                f"--persistence.file={prom / 'pushgateway.data'}",
                "--persistence.interval=30s",
            ],
            priority=30,
            health_url=f"{endpoints.pushgateway_url()}/-/ready",
        ),
        Program(
            name="gateway-exporter",
            command=[
                "/usr/bin/mtail",
                f"--progs={MTAIL_PROGS}",
                f"--logs={access_log()}",
                f"--address={HOST}",
                f"--port={ports.nginx_exporter}",
                "--emit_prog_label=false",
                "--logtostderr",
            ],
            priority=30,
            health_url=f"http://{HOST}:{ports.nginx_exporter}/metrics",
        ),
        Program(
            name="process-exporter",
            command=[
                "/usr/bin/prometheus-process-exporter",
                f"-web.listen-address={HOST}:{ports.process_exporter}",
                f"-config.path={prom / 'process-exporter.yml'}",
                "-threads=false",
                "-gather-smaps=false",
            ],
            priority=30,
            health_url=f"http://{HOST}:{ports.process_exporter}/metrics",
        ),
    ]


def query(expr: str, timeout: float = 10) -> list[dict[str, Any]]:
    """Instant query against the local Prometheus; raise with Prometheus's error message if it is invalid."""
    return _api("query", {"query": expr}, timeout)


def query_range(expr: str, start: float, end: float, step: float, timeout: float = 20) -> list[dict[str, Any]]:
    return _api("query_range", {"query": expr, "start": str(start), "end": str(end), "step": str(step)}, timeout)


def _api(kind: str, params: dict[str, str], timeout: float) -> list[dict[str, Any]]:
    data = urllib.parse.urlencode(params).encode()
    request = urllib.request.Request(f"{endpoints.prometheus_url()}/api/v1/{kind}", data=data, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            body = json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        body = json.loads(exc.read() or b"{}")
        raise PrometheusQueryError(f"{params['query']!r}: {body.get('error', exc.reason)}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise PrometheusQueryError(
            f"Prometheus at {endpoints.prometheus_url()} is not answering ({exc}); run `mlp env up`"
        ) from exc
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


class PrometheusQueryError(RuntimeError):
    pass
