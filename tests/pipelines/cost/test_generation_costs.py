"""The cost report prices each generate model from its newest gate report, at the model's own replica price."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from core.cost import replica_usd_per_hour
from core.policy import policy
from pipelines.cost import report as rep


def generator() -> str:
    (name,) = [m.name for m in policy().models if m.task == "generate"]
    return name


def gate_report(reports: Path, form: str, ttft_ms: float, tps: float, age_seconds: float = 0) -> None:
    path = reports / f"gate-{generator()}-{form}.json"
    measures = {"ttft_p50_ms": ttft_ms, "tokens_per_second": tps, "choice_accuracy": 0.9}
    path.write_text(json.dumps({"measures": measures}))
    stamp = path.stat().st_mtime - age_seconds
    os.utime(path, (stamp, stamp))


def test_the_newest_gate_report_prices_requests_and_tokens(tmp_path: Path) -> None:
    gate_report(tmp_path, "old", ttft_ms=900, tps=2, age_seconds=3600)
    gate_report(tmp_path, "q4", ttft_ms=200, tps=21)
    (row,) = rep.generation_costs(policy(), tmp_path)
    p = policy().for_model(generator())
    tokens = p.generation.default_new_tokens
    seconds = 0.2 + (tokens - 1) / 21  # first token, then the rest at 21 tokens/s
    usd_per_second = replica_usd_per_hour(p) / 3600
    assert row["measured"]["report"] == f"gate-{generator()}-q4.json"
    assert row["usd_per_1k_requests"] == pytest.approx(usd_per_second * seconds * 1000)
    assert row["usd_per_million_tokens"] == pytest.approx(usd_per_second * seconds / tokens * 1e6)
    text = "\n".join(rep._generation_markdown([row]))
    assert f"| {generator()} |" in text and f"{row['usd_per_million_tokens']:.2f}" in text


def test_a_model_never_gated_is_listed_with_the_command_that_measures_it(tmp_path: Path) -> None:
    (row,) = rep.generation_costs(policy(), tmp_path)
    assert row["measured"] is None and row["to_measure"] == f"mlp model gate-generator --model {generator()}"
    assert "run `mlp model gate-generator" in "\n".join(rep._generation_markdown([row]))
