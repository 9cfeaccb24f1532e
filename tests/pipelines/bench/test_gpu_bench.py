"""The GPU benchmark on this machine's CPU: the export writes a folder the script needs nothing else to run with, the
script reproduces the packaged ONNX model's answers before it times anything, and a wrong head fails it loudly.

Both run in the packaging env (`.venv-pack`, the one with PyTorch), as `make gpu-bench` and the lent GPU machine run
them; the fp32 variant comes from `make test-models`, a step of `make test`.
"""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pipelines.cost import report as rep

REPO_ROOT = Path(__file__).resolve().parents[3]
PACK_PYTHON = REPO_ROOT / ".venv-pack" / "bin" / "python"
FP32 = REPO_ROOT / "build" / "models" / "fp32"
SCRIPT = REPO_ROOT / "pipelines" / "bench" / "gpu_bench.py"
CHECKED_TEXTS = 64  # what --quick checks: export only those, so the reference costs seconds


def pack(*args: str, timeout: int = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PACK_PYTHON), *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("gpu-bench") / "model"
    done = pack(
        "-m",
        "pipelines.packaging.gpu_export",
        "--out",
        str(out),
        "--model-dir",
        str(FP32),
        "--texts",
        str(CHECKED_TEXTS),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return out


@pytest.fixture(scope="module")
def quick_run(exported: Path) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    out = exported.parent / "cpu.json"
    done = pack("-m", "pipelines.bench.gpu_bench", "--model-dir", str(exported), "--out", str(out), "--quick")
    return done, json.loads(out.read_text()) if out.exists() else {}


def test_the_script_imports_nothing_the_gpu_machine_lacks() -> None:
    allowed = {"torch", "transformers", "tokenizers", "numpy", *sys.stdlib_module_names}
    imported = set()
    for node in ast.walk(ast.parse(SCRIPT.read_text())):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert imported - {"__future__"} <= allowed, f"not on the GPU machine: {sorted(imported - allowed)}"


def test_the_export_fits_a_device_call_and_carries_the_reference(exported: Path) -> None:
    names = {p.name for p in exported.iterdir()}
    assert {"model.safetensors", "config.json", "tokenizer.json", "model_config.json", "reference.json"} <= names
    assert sum(p.stat().st_size for p in exported.iterdir()) < 64 * 2**20
    reference = json.loads((exported / "reference.json").read_text())
    head = json.loads((exported / "model_config.json").read_text())
    assert head == json.loads((FP32 / "model_config.json").read_text())  # the packaged fp32 head, unchanged
    assert len(reference["texts"]) == len(reference["probabilities"]) == CHECKED_TEXTS
    assert all(abs(sum(row) - 1) < 1e-5 and len(row) == len(head["labels"]) for row in reference["probabilities"])
    assert json.loads((exported / "config.json").read_text())["model_type"] == "bert"


def test_the_cpu_run_matches_the_onnx_model_and_measures(
    quick_run: tuple[subprocess.CompletedProcess[str], dict[str, Any]],
) -> None:
    done, result = quick_run
    assert done.returncode == 0, done.stdout + done.stderr
    assert result["complete"] and result["passed"]
    (run,) = result["runs"]
    assert (run["device"], run["dtype"]) == ("cpu", "fp32")
    check = run["check"]
    assert check["passed"] and check["texts"] == CHECKED_TEXTS and check["mismatches_outside_ties"] == 0
    assert 0 <= check["max_abs_diff"] <= check["tolerance"]
    assert [b["batch_size"] for b in run["batches"]] == [1, 8, 32]
    assert all(b["texts_per_second"] > 0 and b["texts_per_cpu_second"] > 0 for b in run["batches"])
    assert 0 < run["latency_ms"]["p50"] <= run["latency_ms"]["p95"] <= run["latency_ms"]["p99"]
    assert run["time_to_first_answer_seconds"] > 0 and run["attention"]
    env = result["environment"]
    assert env["cpu"]["count"] >= 1 and env["versions"]["torch"] != "not installed" and "cuda" not in env
    assert "device  dtype" in done.stdout  # the table printed last


def test_the_cost_report_reads_what_the_script_writes(
    quick_run: tuple[subprocess.CompletedProcess[str], dict[str, Any]], tmp_path: Path
) -> None:
    """A CPU result is no GPU measurement; the same file as a GPU would have written it is read as one."""
    _, result = quick_run
    slo = 1e9  # every batch fits: the SLO choice has its own tests (tests/pipelines/cost), this one is about the format
    (tmp_path / "gpu-bench-cpu.json").write_text(json.dumps(result))
    assert rep.gpu_measurements(tmp_path, slo) == []
    as_gpu = json.loads(json.dumps(result))
    as_gpu["environment"]["cuda"] = {"name": "NVIDIA A10G"}
    as_gpu["runs"][0]["device"] = "cuda"
    (tmp_path / "gpu-bench-cpu.json").write_text(json.dumps(as_gpu))
    (found,) = rep.gpu_measurements(tmp_path, slo)
    best = max(as_gpu["runs"][0]["batches"], key=lambda b: b["texts_per_second"])
    assert (found.gpu, found.dtype, found.date) == ("NVIDIA A10G", "fp32", result["date"][:10])
    assert (found.inferences_per_second, found.batch_size) == (best["texts_per_second"], best["batch_size"])


def test_a_wrong_head_fails_loudly_and_is_not_timed(exported: Path, tmp_path: Path) -> None:
    broken = tmp_path / "model"
    shutil.copytree(exported, broken)
    config = json.loads((broken / "model_config.json").read_text())
    config["head"]["coef"] = [[-w for w in row] for row in config["head"]["coef"]]
    (broken / "model_config.json").write_text(json.dumps(config))
    out = tmp_path / "broken.json"
    # As the GPU machine runs it: the file by its path, not the module.
    done = pack(str(SCRIPT), "--model-dir", str(broken), "--out", str(out), "--quick")
    assert done.returncode == 1, done.stdout + done.stderr
    result = json.loads(out.read_text())
    (run,) = result["runs"]
    assert not result["passed"] and not run["check"]["passed"] and run["check"]["label_mismatches"] > 0
    assert run["batches"] == [] and run["latency_ms"] == {}
    assert "FAIL" in done.stdout
