"""The local Prometheus stack's configuration, checked by the tools that run it (no servers needed)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from core import promql as q
from core.policy import policy
from infra.local import generators
from infra.local import prometheus as local

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
MTAIL = shutil.which("mtail") or "/usr/bin/mtail"


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MLP_STATE_DIR", str(tmp_path))
    return tmp_path


def test_configs_are_written_and_promtool_accepts_them(state: Path) -> None:
    local.write_configs()
    config = state / "prometheus" / "prometheus.yml"
    result = subprocess.run([PROMTOOL, "check", "config", str(config)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout and "rule files found" in result.stdout
    assert (state / "prometheus" / "targets" / "model-servers.json").read_text().strip() == "[]"
    assert (state / "logs" / local.GATEWAY_ACCESS_LOG).exists()


def test_existing_targets_file_is_kept(state: Path) -> None:
    targets = state / "prometheus" / "targets" / "model-servers.json"
    targets.parent.mkdir(parents=True)
    targets.write_text('[{"targets": ["127.0.0.1:13000"], "labels": {"model_version": "1"}}]')
    local.write_configs()
    assert "13000" in targets.read_text()


def test_every_exporter_is_scraped_on_its_policy_port(state: Path) -> None:
    ports = policy().ports
    jobs = {c["job_name"]: c for c in local.prometheus_config()["scrape_configs"]}
    expected = {
        "prometheus": ports.prometheus,
        "node": ports.node_exporter,
        "pushgateway": ports.pushgateway,
        q.GATEWAY_EXPORTER_JOB: ports.nginx_exporter,
        q.PROCESS_EXPORTER_JOB: ports.process_exporter,
    }
    for job, port in expected.items():
        assert jobs[job]["static_configs"][0]["targets"] == [f"127.0.0.1:{port}"]
    assert jobs["pushgateway"]["honor_labels"] is True
    # One glob over the targets folder: the classifier's servers and the generate servers each write a file there.
    (pattern,) = jobs[q.MODEL_SERVER_JOB]["file_sd_configs"][0]["files"]
    assert Path(pattern).parent == local.targets_file().parent == generators.targets_path().parent
    assert Path(pattern).match("*.json") and Path(pattern).name == "*.json"
    interval = f"{policy().alerting.local_scrape_interval_seconds}s"
    assert local.prometheus_config()["global"]["scrape_interval"] == interval
    programs = {p.name: p for p in local.programs()}
    assert set(programs) == {"prometheus", "node-exporter", "pushgateway", "gateway-exporter", "process-exporter"}
    for program in programs.values():
        assert program.health_url and "127.0.0.1" in program.health_url
        assert Path(program.command[0]).exists(), f"{program.command[0]} missing: run `make bootstrap`"


def test_process_exporter_groups_model_servers_by_port() -> None:
    pattern = re.compile(local.MODEL_SERVER_CMDLINE)
    cmdlines = {
        "/work/.venv/bin/python /work/.venv/bin/bentoml serve services.model_server:Classifier --port 13002": "13002",
        "bentoml serve . --host 127.0.0.1 --port=13005 --working-dir /x": "13005",
    }
    for cmdline, port in cmdlines.items():
        match = pattern.search(cmdline)
        assert match and match.group("port") == port, cmdline
    assert not pattern.search("/usr/bin/prometheus --web.listen-address=127.0.0.1:19090")
    assert "model-server-{{.Matches.port}}" in yaml.safe_dump(local.process_exporter_config())


def test_mtail_program_counts_per_upstream_version_in_any_key_order(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text(
        '{"time":"2026-11-24T10:00:00+00:00","status":"200","request_time":"0.012","upstream_version":"3",'
        '"api_key_name":"demo"}\n'
        '{"api_key_name":"demo","upstream_version":"4","status":200,"request_time":0.250}\n'
        '{"api_key_name":"demo","upstream_version":"4","status":"200","request_time":"0.030"}\n'
        '{"status":"401","request_time":"0.000","upstream_version":"","api_key_name":""}\n'
    )
    result = subprocess.run(
        [MTAIL, f"--progs={local.MTAIL_PROGS}", f"--logs={log}", "--one_shot", "--one_shot_format=prometheus",
         "--emit_prog_label=false", "--logtostderr"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    samples = {}
    for line in result.stdout.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)

    def total(**labels: str) -> float:
        inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        return samples[f"{q.GATEWAY_REQUESTS_TOTAL}{{{inner}}}"]

    assert total(api_key_name="demo", status="200", upstream_version="3") == 1
    assert total(api_key_name="demo", status="200", upstream_version="4") == 2
    assert total(api_key_name="", status="401", upstream_version="") == 1
    assert samples[f'{q.GATEWAY_REQUEST_DURATION}_count{{upstream_version="4"}}'] == 2
    assert samples[f'{q.GATEWAY_REQUEST_DURATION}_sum{{upstream_version="4"}}'] == pytest.approx(0.28)
    assert samples[f'{q.GATEWAY_REQUEST_DURATION}_bucket{{upstream_version="4",le="0.05"}}'] == 1
    assert not any('upstream_version=""' in k for k in samples if q.GATEWAY_REQUEST_DURATION in k)
