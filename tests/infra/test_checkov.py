"""checkov over every synthesized stack: zero failed checks; every skip in infra/.checkov.yaml gives its reason."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import yaml

from tests.infra.conftest import Synth

REPO = Path(__file__).resolve().parents[2]
CHECKOV = REPO / ".venv-checkov" / "bin" / "checkov"
CONFIG = REPO / "infra" / ".checkov.yaml"


def test_every_skip_has_a_reason() -> None:
    skips = yaml.safe_load(CONFIG.read_text())["skip-check"]
    lines = [line for line in CONFIG.read_text().splitlines() if line.strip().startswith("- CKV")]
    assert len(lines) == len(skips) > 0
    for line in lines:
        check, _, reason = line.strip()[2:].partition("#")
        assert len(reason.strip()) > 40, f"{check.strip()}: give the reason this finding is accepted"


def test_checkov_passes_on_all_stacks(synth: Synth) -> None:
    # A missing checkov is a failure, never a skip: `make test` installs it (infra/tools/install-checkov.sh).
    assert CHECKOV.exists(), "checkov missing: run `bash infra/tools/install-checkov.sh` (make bootstrap does)"
    proc = subprocess.run(
        [
            str(CHECKOV),
            "-d",
            str(synth.outdir),
            "--framework",
            "terraform_json",
            "--config-file",
            str(CONFIG),
            "-o",
            "json",
            "--quiet",
            "--compact",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},
        timeout=600,
        check=False,
    )
    reports = json.loads(proc.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    summary = reports[0]["summary"]
    failed = [f"{f['check_id']} {f['resource']}" for r in reports for f in r["results"]["failed_checks"]]
    print(f"checkov: {summary['passed']} passed, {summary['failed']} failed, {summary['skipped']} skipped")
    assert summary["parsing_errors"] == 0
    assert summary["passed"] > 300
    assert not failed, "\n".join(failed)
