"""Answers read back from the inference-log layout the model servers write, paired across two versions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pipelines.drift.logs import ReadStats, Window, write_records
from pipelines.shadow.compare import compare, paired
from pipelines.shadow.logs import read_answers
from tests.pipelines.memory_s3 import MemoryS3

T0 = datetime(2026, 3, 4, 5, 6, tzinfo=UTC)
WINDOW = Window(T0, T0 + timedelta(minutes=10))


def row(request_id: str, index: int, label: str, confidence: float, at: datetime = T0) -> dict[str, object]:
    return {"ts": at.isoformat(), "request_id": request_id, "index": index, "text": f"{request_id}/{index}",
            "label": label, "confidence": confidence}  # fmt: skip


def test_two_versions_logs_pair_by_request_and_position() -> None:
    s3 = MemoryS3()
    write_records(s3, "logs", "m", 1, [row("a", 0, "pos", 0.9), row("a", 1, "neg", 0.8), row("b", 0, "pos", 0.7)])
    write_records(s3, "logs", "m", 2, [row("a", 1, "pos", 0.6), row("a", 0, "pos", 0.9)])
    stable, candidate = (read_answers(s3, "logs", "m", v, WINDOW) for v in (1, 2))
    c = compare(paired(stable, candidate))
    assert (c.pairs, c.agreement, c.flip_rates) == (2, 0.5, {"neg": 1.0, "pos": 0.0})


def test_rows_outside_the_window_or_without_a_request_id_are_left_out_and_counted() -> None:
    s3 = MemoryS3()
    late = row("c", 0, "pos", 0.9, at=T0 + timedelta(minutes=11))
    anonymous = row("d", 0, "pos", 0.9)
    del anonymous["request_id"]
    old_format = row("e", 0, "neg", 0.5)
    del old_format["index"]
    write_records(s3, "logs", "m", 1, [row("a", 2, "pos", 0.9), late, anonymous, old_format])
    stats = ReadStats()
    answers = read_answers(s3, "logs", "m", 1, WINDOW, stats)
    assert [(a.request_id, a.index) for a in answers] == [("a", 2), ("e", 0)]
    assert (stats.records, stats.malformed) == (2, 1)
