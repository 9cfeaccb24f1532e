"""Slot allocation and the Prometheus file_sd targets of the local model servers (no processes started)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.policy import policy
from infra.local import model_servers as ms


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MLP_STATE_DIR", str(tmp_path))
    return tmp_path


def test_free_slot_is_the_lowest_unused(state: Path) -> None:
    assert ms._free_slot({}) == 0
    assert ms._free_slot({3: 0, 4: 2}) == 1


def test_all_slots_used_names_the_fix(state: Path) -> None:
    slots = {v: v for v in range(policy().ports.model_server_slots)}
    with pytest.raises(ms.ModelServerError, match="stop a version first"):
        ms._free_slot(slots)


def test_slots_persist_and_give_ports_and_targets(state: Path) -> None:
    ms._write_slots({4: 1, 3: 0})
    servers = ms.live_model_servers()
    base = policy().ports.model_server_base
    assert [(s.version, s.port, s.program) for s in servers] == [(3, base, "model-v3"), (4, base + 1, "model-v4")]
    ms.write_targets()
    targets = json.loads((state / "prometheus" / "targets" / "model-servers.json").read_text())
    assert targets[1] == {
        "targets": [f"127.0.0.1:{base + 1}"],
        "labels": {"model_name": policy().release.default_model, "model_version": "4", "job": "model-server"},
    }


def test_program_runs_bentoml_with_the_version_and_no_secret_in_clear(state: Path) -> None:
    program = ms.model_server_program(3, 13005)
    assert program.command[1:] == ["serve", ms.SERVICE_REF, "--port", "13005", "--host", "127.0.0.1"]
    assert program.env["MLP_MODEL_VERSION"] == "3"
    assert program.health_url == "http://127.0.0.1:13005/readyz"
    assert program.secret_env["AWS_SECRET_ACCESS_KEY"] == "{s3_secret_key}"  # a template, resolved at exec
    assert "AWS_SECRET_ACCESS_KEY" not in program.env


def test_the_server_gets_the_artifact_public_key_and_never_the_signing_key(state: Path) -> None:
    from core import env
    from infra.local.secrets import ARTIFACT_SIGNING_KEY, artifact_public_key, get_secret

    program = ms.model_server_program(3, 13005)
    assert program.env[env.ARTIFACT_PUBLIC_KEY.name] == artifact_public_key()
    private = get_secret(ARTIFACT_SIGNING_KEY)
    assert all(private not in str(v) for v in [*program.env.values(), *program.secret_env.values()])
