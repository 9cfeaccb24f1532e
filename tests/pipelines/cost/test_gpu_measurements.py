"""A GPU row of the cost report uses the GPU benchmark's measurement where one was taken on that instance's GPU, and
the estimate in policy.yaml otherwise (pipelines/cost/report.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from core import cost as m
from core.policy import policy
from pipelines.cost import report as rep
from pipelines.cost.measure import BatchTiming, CpuThroughput

SLO = policy().slo.latency_p95_ms


def batch(size: int, p95_ms: float, texts_per_second: float) -> dict[str, Any]:
    return {
        "batch_size": size,
        "calls": 50,
        "p50_ms": p95_ms * 0.8,
        "p95_ms": p95_ms,
        "texts_per_second": texts_per_second,
    }


def bench_file(folder: Path, name: str, gpu: str, date: str, runs: list[dict[str, Any]]) -> Path:
    """A result shaped as pipelines/bench/gpu_bench.py writes it (the fields the report reads)."""
    path = folder / f"gpu-bench-{name}.json"
    cuda = {"cuda": {"name": gpu}} if gpu else {}
    path.write_text(json.dumps({"schema": 1, "date": f"{date}T10:00:00+00:00", "environment": cuda, "runs": runs}))
    return path


def run(device: str, dtype: str, batches: list[dict[str, Any]], passed: bool = True) -> dict[str, Any]:
    return {"device": device, "dtype": dtype, "check": {"passed": passed}, "error": "", "batches": batches}


def cpu() -> CpuThroughput:
    return CpuThroughput(250.0, 1.0, 1, 6.0, "test", "int8", "test cpu", [BatchTiming(1, 4.0, 6.0, 250.0, 250.0)])


def test_the_fastest_checked_batch_within_the_slo_is_the_measurement(tmp_path: Path) -> None:
    bench_file(
        tmp_path,
        "a10g",
        "NVIDIA A10G",
        "2027-01-10",
        [
            run("cpu", "fp32", [batch(1, 5, 90_000)]),  # the CPU of the GPU machine: never a GPU figure
            run("cuda", "fp32", [batch(8, 4, 2_000), batch(128, SLO * 0.4, 9_000), batch(512, SLO * 0.6, 12_000)]),
            run("cuda", "bf16", [batch(128, 5, 50_000)], passed=False),  # wrong answers: not priced however fast
        ],
    )
    (found,) = rep.gpu_measurements(tmp_path, SLO)
    # batch 512 meets the SLO alone, not once the wait for the batch in flight doubles it
    assert (found.gpu, found.dtype, found.batch_size, found.inferences_per_second) == (
        "NVIDIA A10G",
        "fp32",
        128,
        9_000,
    )
    assert found.date == "2027-01-10" and found.source.endswith("gpu-bench-a10g.json")


def test_a_measured_gpu_replaces_its_estimate_and_says_so(tmp_path: Path) -> None:
    p = policy()
    bench_file(tmp_path, "a10g-old", "NVIDIA A10G", "2027-01-10", [run("cuda", "fp16", [batch(32, 5, 4_000)])])
    newest = bench_file(tmp_path, "a10g-new", "NVIDIA A10G", "2027-02-01", [run("cuda", "fp16", [batch(32, 5, 6_000)])])
    r = rep.build(p, cpu(), 2.0, rep.ScenarioInputs(), rep.gpu_measurements(tmp_path, SLO))
    rows = {g["instance"]: g for g in r["gpu"]}
    a10g = next(name for name, inst in p.prices.instances.items() if inst.gpu and "A10G" in inst.gpu)
    measured = rows[a10g]
    assert measured["status"] == rep.MEASURED_LABEL and measured["inferences_per_second"] == 6_000
    assert measured["source"] == str(newest) and measured["as_of"] == "2027-02-01"
    assert measured["estimate_inferences_per_second"] == p.prices.gpu_throughput[a10g].inferences_per_second
    assert measured["usd_per_1k"] == pytest.approx(m.cost_per_1k(measured["usd_per_hour"], 6_000))
    for name, row in rows.items():
        if name != a10g:  # the T4 was not measured: still the cited estimate
            assert row["status"] == rep.GPU_LABEL
            assert row["inferences_per_second"] == p.prices.gpu_throughput[name].inferences_per_second
    text = rep.markdown(r)
    assert f"({rep.MEASURED_LABEL}): measured on NVIDIA A10G" in text and str(newest) in text
    assert r["gpu_measured_unpriced"] == []


def test_a_gpu_no_instance_has_is_shown_but_priced_nowhere(tmp_path: Path) -> None:
    p = policy()
    bench_file(tmp_path, "h200", "NVIDIA H200", "2027-01-10", [run("cuda", "bf16", [batch(128, 5, 40_000)])])
    r = rep.build(p, cpu(), 2.0, rep.ScenarioInputs(), rep.gpu_measurements(tmp_path, SLO))
    assert all(g["status"] == rep.GPU_LABEL for g in r["gpu"])
    (unpriced,) = r["gpu_measured_unpriced"]
    assert unpriced["gpu"] == "NVIDIA H200" and unpriced["inferences_per_second"] == 40_000
    assert "Also measured, on a GPU no priced instance has: NVIDIA H200" in rep.markdown(r)


def test_no_measurement_folder_keeps_every_estimate(tmp_path: Path) -> None:
    assert rep.gpu_measurements(tmp_path / "absent", SLO) == []
    r = rep.build(policy(), cpu(), 2.0, rep.ScenarioInputs(), [])
    assert all(g["status"] == rep.GPU_LABEL for g in r["gpu"])


def test_gpu_names_match_by_model_word() -> None:
    assert rep.same_gpu("1x NVIDIA T4 16 GB", "Tesla T4")
    assert rep.same_gpu("1x NVIDIA A10G 24 GB", "NVIDIA A10G")
    assert rep.same_gpu("8x NVIDIA A100 40 GB", "NVIDIA A100-SXM4-40GB")
    assert not rep.same_gpu("1x NVIDIA A10G 24 GB", "NVIDIA A100-SXM4-40GB")
    assert not rep.same_gpu("1x NVIDIA A10 24 GB", "NVIDIA A100-SXM4-40GB")
    assert not rep.same_gpu(None, "NVIDIA H200")


def test_a_file_that_is_not_a_result_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "gpu-bench-notes.json").write_text('{"date": "2027-01-10"}')
    with pytest.raises(ValueError, match="not a GPU benchmark result"):
        rep.gpu_measurements(tmp_path, SLO)
