"""Supervisor program configs and the secret-injecting wrapper."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from infra.local.supervisor import Program


def test_secret_env_is_passed_by_name_only() -> None:
    program = Program(name="x", command=["/bin/true"], secret_env={"TOKEN": "{some_secret}"})
    conf = program.conf()
    assert "--env 'TOKEN={some_secret}'" in conf
    assert conf.splitlines()[1].startswith("command=")
    assert "infra.local.exec_with_secrets" in conf


def test_percent_signs_are_escaped_for_supervisor() -> None:
    conf = Program(name="x", command=["echo", "50%"]).conf()
    assert "50%%" in conf


def test_wrapper_resolves_secrets_inside_the_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLP_STATE_DIR", str(tmp_path))
    from infra.local.secrets import get_secret

    value = get_secret("demo_token")
    out = subprocess.run(
        [sys.executable, "-m", "infra.local.exec_with_secrets", "--env", "T=pre-{demo_token}", "--",
         sys.executable, "-c", "import os; print(os.environ['T'])"],
        capture_output=True, text=True, check=True, env={"MLP_STATE_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert out.stdout.strip() == f"pre-{value}"
    assert (tmp_path / "secrets" / "demo_token").stat().st_mode & 0o777 == 0o600


def test_wrapper_rejects_malformed_options() -> None:
    out = subprocess.run([sys.executable, "-m", "infra.local.exec_with_secrets", "--env", "NOEQUALS", "--", "true"],
                         capture_output=True, text=True)  # fmt: skip
    assert out.returncode != 0 and "NAME=TEMPLATE" in out.stderr


def test_supervisord_config_asks_for_a_password_and_is_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import hashlib

    monkeypatch.setenv("MLP_STATE_DIR", str(tmp_path))

    from infra.local.secrets import get_secret
    from infra.local.supervisor import SUPERVISOR_SECRET, _write_main_conf

    conf = _write_main_conf()
    text = conf.read_text()
    secret = get_secret(SUPERVISOR_SECRET)
    assert conf.stat().st_mode & 0o777 == 0o600
    assert text.count("password={SHA}" + hashlib.sha1(secret.encode()).hexdigest()) == 2  # both servers
    assert "chmod=0700" in text and "[inet_http_server]" in text and "port=127.0.0.1:" in text
