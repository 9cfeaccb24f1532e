"""A generator is registered only with a passing gate report of the very file: each refusal names its reason and
comes before the registry is called, so nothing is half-registered."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines.registry.register_generator import register_generator
from services.registry.client import RegistryError

SHA = "ab" * 32


def packaged(tmp_path: Path) -> Path:
    folder = tmp_path / "gemma3-270m"
    folder.mkdir()
    (folder / "model.gguf").write_bytes(b"GGUF")
    config = {"name": "gemma3-270m-q4_k_m", "quantisation": "Q4_K_M", "source": "PyPI", "sha256": SHA}
    (folder / "generator.json").write_text(json.dumps(config))
    return folder


def report(tmp_path: Path, *, sha256: str = SHA, passed: bool = True) -> Path:
    criteria = [{"name": "choice accuracy", "passed": True}, {"name": "decode speed", "passed": passed}]
    path = tmp_path / "gate.json"
    path.write_text(json.dumps({"sha256": sha256, "passed": passed, "criteria": criteria, "measures": {}}))
    return path


def refuse(folder: Path, gate: Path, match: str) -> None:
    def no_progress(_: str) -> None:
        raise AssertionError("nothing may be uploaded for a refused generator")

    with pytest.raises(RegistryError, match=match):
        register_generator(folder, "gemma3-270m", gate, progress=no_progress)


def test_a_folder_without_the_weights_is_refused(tmp_path: Path) -> None:
    folder = packaged(tmp_path)
    (folder / "model.gguf").unlink()
    refuse(folder, report(tmp_path), "missing model.gguf")


def test_without_a_gate_report_it_says_to_gate_first(tmp_path: Path) -> None:
    refuse(packaged(tmp_path), tmp_path / "absent.json", "gate-generator")


def test_a_report_of_another_file_is_refused(tmp_path: Path) -> None:
    refuse(packaged(tmp_path), report(tmp_path, sha256="cd" * 32), "another generator file")


def test_a_failed_gate_is_refused_naming_the_criterion(tmp_path: Path) -> None:
    refuse(packaged(tmp_path), report(tmp_path, passed=False), "failed its gate \\(decode speed\\)")
