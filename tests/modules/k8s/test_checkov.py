"""checkov --framework kubernetes over the rendered YAML: zero failed checks (skips in modules/k8s/.checkov.yaml)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from core.policy import policy
from modules.k8s import render_all, write
from tests.modules.k8s.conftest import ALL_VARIANTS, props

REPO = Path(__file__).resolve().parents[3]
CHECKOV = REPO / ".venv-checkov" / "bin" / "checkov"


def test_checkov_finds_no_failed_check(tmp_path):
    if not CHECKOV.exists():
        pytest.fail(
            f"{CHECKOV} missing: run `bash infra/tools/install-checkov.sh` (make bootstrap does; it installs "
            "requirements/checkov.lock)"
        )
    for mode, gpu in ALL_VARIANTS:
        write(render_all(props(mode, gpu)), tmp_path / f"{mode}-{gpu}")
    # Every other task's model as the catalogue has it: generate, embed and the RAG server with its extra policies.
    for m in policy().models:
        if m.task != "classify":
            write(render_all(props(model=m.name, weights={1: 100})), tmp_path / m.name)
    proc = subprocess.run(
        [str(CHECKOV), "-d", str(tmp_path), "--config-file", str(REPO / "modules/k8s/.checkov.yaml"), "-o", "json"],
        capture_output=True,
        text=True,
        timeout=300,
        env={"BC_SKIP_MAPPING": "TRUE", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    report = json.loads(proc.stdout)
    reports = report if isinstance(report, list) else [report]
    summary = reports[0]["summary"]
    failed = [f"{c['check_id']} {c['resource']}" for r in reports for c in r["results"]["failed_checks"]]
    assert summary["passed"] > 100
    assert failed == [], failed
