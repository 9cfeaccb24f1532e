"""The cluster's comparison job on an in-memory S3 and a Pushgateway stand-in: the window it reads, what it pushes,
and its error paths (the real S3 API, Pushgateway and Prometheus: tests/integration/test_rehearsal_shadow.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from core import env
from core.policy import policy
from pipelines.drift.logs import write_records
from pipelines.shadow import job
from tests.pipelines.memory_s3 import MemoryS3

NOW = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)
MODEL = policy().release.default_model


def row(request_id: str, label: str, confidence: float, at: datetime) -> dict[str, object]:
    return {"ts": at.isoformat(), "request_id": request_id, "index": 0, "text": request_id, "label": label,
            "confidence": confidence}  # fmt: skip


@pytest.fixture()
def settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(env.MODEL_NAME.name, MODEL)
    monkeypatch.setenv(env.INFERENCE_LOG_BUCKET.name, "logs")
    monkeypatch.setenv(env.PUSHGATEWAY_URL.name, "http://pushgateway.invalid")


def test_a_missing_setting_or_an_unknown_model_is_an_error_that_names_it(
    monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.delenv(env.PUSHGATEWAY_URL.name, raising=False)
    monkeypatch.setenv(env.MODEL_NAME.name, MODEL)
    monkeypatch.setenv(env.INFERENCE_LOG_BUCKET.name, "logs")
    assert job.main(["--candidate", "4", "--stable", "3", "--window-seconds", "600"], now=NOW) == job.EXIT_ERROR
    assert env.PUSHGATEWAY_URL.name in capsys.readouterr().err
    monkeypatch.setenv(env.PUSHGATEWAY_URL.name, "http://pushgateway.invalid")
    monkeypatch.setenv(env.MODEL_NAME.name, "no-such-model")
    assert job.main(["--candidate", "4", "--stable", "3", "--window-seconds", "600"], now=NOW) == job.EXIT_ERROR
    assert "'no-such-model' is not in the catalogue" in capsys.readouterr().err


def test_pairs_inside_the_window_are_measured_and_pushed(
    settings: None, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    """The window ends a log flush (+2 s) before now: a record newer than that may have its pair still in flight."""
    s3 = MemoryS3()
    flush = policy().serving.inference_log_flush_seconds + 2
    inside, too_new, too_old = NOW - timedelta(seconds=flush + 30), NOW - timedelta(seconds=1), NOW - timedelta(hours=1)
    stable = [row(f"r{i}", "positive", 0.9, inside) for i in range(10)]
    candidate = [row(f"r{i}", "positive" if i < 8 else "negative", 0.7, inside) for i in range(10)]
    stable += [row("new", "positive", 0.9, too_new), row("old", "positive", 0.9, too_old)]
    candidate += [row("new", "negative", 0.1, too_new), row("old", "negative", 0.1, too_old)]
    write_records(s3, "logs", MODEL, 3, stable)
    write_records(s3, "logs", MODEL, 4, candidate)
    pushes: list[dict[str, Any]] = []
    monkeypatch.setattr(job, "aws_s3", lambda: s3)
    monkeypatch.setattr(job, "push_quality", lambda *args, **kw: pushes.append({"args": args, **kw}))

    assert job.main(["--candidate", "4", "--stable", "3", "--window-seconds", "600"], now=NOW) == job.EXIT_OK

    report = json.loads(capsys.readouterr().out)
    assert (report["pairs"], report["agreement"], report["records"]) == (10, 0.8, {"stable": 10, "candidate": 10})
    assert report["verdict"] == "inconclusive"  # 10 pairs < min_pairs: the job measures, the analysis judges
    (push,) = pushes
    url, model, candidate_version, stable_version, measures = push["args"]
    assert (url, model, candidate_version, stable_version) == ("http://pushgateway.invalid", MODEL, 4, 3)
    assert measures["pairs"] == 10 and measures["mean_confidence_delta"] == pytest.approx(-0.2)
    assert "label_shift_p_value" not in measures and push["failed"] is False


def test_an_unreachable_bucket_or_pushgateway_is_an_error(
    settings: None, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    class Broken:
        def get_paginator(self, _name: str) -> Any:
            raise ConnectionError("no route to s3")

    monkeypatch.setattr(job, "aws_s3", Broken)
    assert job.main(["--candidate", "4", "--stable", "3", "--window-seconds", "60"], now=NOW) == job.EXIT_ERROR
    assert "could not read the inference logs in s3://logs" in capsys.readouterr().err

    def refused(*_args: Any, **_kw: Any) -> None:
        raise OSError("connection refused")

    monkeypatch.setattr(job, "aws_s3", MemoryS3)
    monkeypatch.setattr(job, "push_quality", refused)
    assert job.main(["--candidate", "4", "--stable", "3", "--window-seconds", "60"], now=NOW) == job.EXIT_ERROR
    assert "could not push to the Pushgateway at http://pushgateway.invalid" in capsys.readouterr().err
