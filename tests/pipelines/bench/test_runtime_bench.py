"""The quantisation table: the served columns come from a real serving run's report, and a failed one says why."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from pipelines.bench import runtime_bench


def row(variant: str, served: dict[str, dict[str, float]] | None) -> dict[str, Any]:
    return {
        "variant": variant,
        "runtime": "onnx",
        "heldout_accuracy": 0.76,
        "heldout_macro_f1": 0.75,
        "agreement_with_fp32": 1.0,
        "encoder_mb": 90.9,
        "rss_single_requests_mb": 300,
        "peak_rss_mb": 400,
        "p50_ms": 10.0,
        "p95_ms": 15.0,
        "throughput_texts_per_s": {"1": 100.0, "8": 150.0, "32": 160.0},
        "cpu_instance": "c7i.xlarge",
        "usd_per_1k": 0.0001,
        **({"served": served} if served is not None else {}),
    }


def rendered(results: list[dict[str, Any]]) -> list[str]:
    console = Console(width=400, record=True)
    console.print(runtime_bench.table(results))
    return console.export_text().splitlines()


def test_served_columns_show_p50_p99_and_errors_and_a_dash_when_not_measured() -> None:
    served = {
        "50": {"p50_ms": 12.4, "p99_ms": 40.6, "errors": 0, "sent": 500},
        "100": {"p50_ms": 900.0, "p99_ms": 2400.0, "errors": 3, "sent": 1000},
    }
    lines = rendered([row("int8", served), row("fp32", None)])
    assert "served p50/p99 ms @50/s" in " ".join(lines)
    int8 = next(line for line in lines if line.startswith("│ int8 "))
    fp32 = next(line for line in lines if line.startswith("│ fp32 "))
    assert "12 / 41" in int8 and "900 / 2400 (3 err.)" in int8
    assert int8.index("12 / 41") < int8.index("900 / 2400")  # 50/s before 100/s
    assert "/ 41" not in fp32 and fp32.rstrip(" │").split()[-1] == "-"


def test_served_reads_the_serving_run_report(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(runtime_bench, "build_dir", lambda: tmp_path)
    calls: list[list[str]] = []

    def fake_run(cmd: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        calls.append(cmd)
        out = Path(cmd[cmd.index("--out") + 1])
        out.parent.mkdir(parents=True, exist_ok=True)
        results = [{"rate": r, "p50_ms": 5.0, "p99_ms": 9.0, "errors": 0, "sent": r * 10} for r in (50, 100)]
        out.write_text(json.dumps({"results": results}))
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(runtime_bench.subprocess, "run", fake_run)
    got = runtime_bench.served("gguf-q8_0")
    assert got == {
        "50": {"p50_ms": 5.0, "p99_ms": 9.0, "errors": 0, "sent": 500},
        "100": {"p50_ms": 5.0, "p99_ms": 9.0, "errors": 0, "sent": 1000},
    }
    (cmd,) = calls
    assert cmd[cmd.index("--variant") + 1] == "gguf-q8_0" and cmd[cmd.index("--layers") + 1] == "gateway"
    assert cmd[cmd.index("--rates") + 1] == "50,100"


def test_a_failed_serving_run_raises_with_its_output(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(runtime_bench, "build_dir", lambda: tmp_path)
    monkeypatch.setattr(
        runtime_bench.subprocess,
        "run",
        lambda cmd, **_: subprocess.CompletedProcess(cmd, 2, "", "gguf-q8_0 is not packaged"),
    )
    with pytest.raises(RuntimeError, match=r"serving gguf-q8_0 through the gateway failed:\n.*not packaged"):
        runtime_bench.served("gguf-q8_0")
