"""Evaluation cache: computed once per (model content, data, code); a different model is computed again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines.eval_cache import cache_key, cached, model_subject
from pipelines.evaluation import EvalResult


@pytest.fixture(autouse=True)
def _state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLP_STATE_DIR", str(tmp_path / "state"))


def _result(accuracy: float) -> EvalResult:
    return EvalResult(10, accuracy, accuracy, {"positive": {"recall": accuracy}})


def test_second_call_reads_the_cache_and_other_subjects_compute() -> None:
    calls: list[str] = []

    def compute(name: str, acc: float) -> EvalResult:
        calls.append(name)
        return _result(acc)

    first = cached("model:a", lambda: compute("a", 0.8))
    again = cached("model:a", lambda: compute("a", 0.1))
    other = cached("model:b", lambda: compute("b", 0.6))
    assert calls == ["a", "b"]
    assert again == first and again.accuracy == 0.8 and other.accuracy == 0.6


def test_model_subject_follows_the_packaged_content_hash(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    for d, h in ((a, "111"), (b, "222")):
        d.mkdir()
        (d / "lineage.json").write_text(json.dumps({"input_hash": h}))
    assert model_subject(a) != model_subject(b)
    assert cache_key(model_subject(a)) != cache_key(model_subject(b))
