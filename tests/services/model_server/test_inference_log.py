"""The inference logger: key layout, record fields, flushing, and dropping (never blocking) when full."""

from __future__ import annotations

import gzip
import json
import re
import threading
import time
from datetime import UTC, datetime

from services.model_server.inference_log import InferenceLogger, Record, object_key

KEY = re.compile(r"^model=m/version=7/date=\d{4}-\d{2}-\d{2}/\d{2}-[0-9a-f]{32}\.jsonl\.gz$")


def record(i: int, ts: datetime | None = None) -> Record:
    return Record(ts or datetime.now(UTC), f"req-{i}", f"text {i}", "positive", 0.9, {"negative": 0.1, "positive": 0.9})


class MemorySink:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def __call__(self, key: str, body: bytes) -> None:
        self.objects[key] = body

    def rows(self) -> list[dict[str, object]]:
        out = []
        for body in self.objects.values():
            out += [json.loads(line) for line in gzip.decompress(body).decode().splitlines()]
        return out


def logger(sink: object, **kw: object) -> InferenceLogger:
    args: dict[str, object] = dict(
        model_name="m", model_version=7, queue_size=100, flush_records=1000, flush_seconds=60.0, sample_rate=1.0
    )
    args.update(kw)
    return InferenceLogger(sink, **args)  # type: ignore[arg-type]


def test_key_layout() -> None:
    key = object_key("review-polarity-classifier", 3, datetime(2026, 5, 4, 9, 30, tzinfo=UTC))
    assert key.startswith("model=review-polarity-classifier/version=3/date=2026-05-04/09-")
    assert key.endswith(".jsonl.gz")


def test_records_are_written_with_every_field_at_close() -> None:
    sink = MemorySink()
    log = logger(sink, count_tokens=lambda texts: [len(t.split()) + 2 for t in texts]).start()
    assert log.submit([record(1), record(2)]) == 2
    log.close()
    assert all(KEY.match(k) for k in sink.objects)
    rows = sink.rows()
    assert [r["request_id"] for r in rows] == ["req-1", "req-2"]
    assert set(rows[0]) == {"ts", "request_id", "index", "model_name", "model_version", "text", "label",
                            "confidence", "scores", "n_tokens"}  # fmt: skip
    assert rows[0]["model_version"] == 7 and rows[0]["n_tokens"] == 4 and rows[0]["text"] == "text 1"


def test_flushes_when_enough_records_arrive() -> None:
    sink = MemorySink()
    log = logger(sink, flush_records=5).start()
    log.submit([record(i) for i in range(5)])
    deadline = time.monotonic() + 10
    while not sink.objects and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(sink.rows()) == 5  # written before close, because the batch was full
    log.close()


def test_flushes_after_flush_seconds() -> None:
    sink = MemorySink()
    log = logger(sink, flush_seconds=0.2).start()
    log.submit([record(1)])
    deadline = time.monotonic() + 10
    while not sink.objects and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(sink.rows()) == 1
    log.close()


def test_one_object_per_hour() -> None:
    sink = MemorySink()
    log = logger(sink).start()
    log.submit([record(1, datetime(2026, 1, 1, 9, 59, tzinfo=UTC)), record(2, datetime(2026, 1, 1, 10, 0, tzinfo=UTC))])
    log.close()
    assert sorted(k.split("/")[3][:2] for k in sink.objects) == ["09", "10"]


def test_full_queue_drops_and_counts_without_blocking() -> None:
    release = threading.Event()
    written: list[str] = []

    def blocked_sink(key: str, body: bytes) -> None:
        release.wait(30)  # the store hangs
        written.append(key)

    drops: list[tuple[str, int]] = []
    log = logger(blocked_sink, queue_size=3, flush_records=1, on_drop=lambda r, n: drops.append((r, n))).start()
    queued = sum(log.submit([record(i)]) for i in range(50))  # returns at once even though the sink hangs
    assert queued < 50
    assert log.dropped == 50 - queued
    assert sum(n for _, n in drops) == log.dropped and {r for r, _ in drops} == {"queue_full"}
    release.set()
    log.close()
    assert log.written == queued


def test_failing_sink_counts_drops_and_keeps_running() -> None:
    calls = []

    def failing(key: str, body: bytes) -> None:
        calls.append(key)
        raise OSError("store down")

    log = logger(failing, flush_records=1).start()
    log.submit([record(1)])
    log.submit([record(2)])
    log.close()
    assert len(calls) == 2 and log.dropped == 2 and log.written == 0


def test_sampling() -> None:
    sink = MemorySink()
    draws = {"req-0": 0.05, "req-1": 0.5, "req-2": 0.09, "req-3": 0.95}
    log = logger(sink, sample_rate=0.1, draw=draws.__getitem__).start()
    results = [log.submit([record(i)]) for i in range(4)]
    log.close()
    assert results == [1, 0, 1, 0]
    assert logger(sink, sample_rate=0.0).submit([record(1)]) == 0


def test_two_servers_sample_the_same_requests() -> None:
    """A mirrored request is logged by both servers or by neither: the decision is the request id's."""
    first, second = (logger(MemorySink(), sample_rate=0.3, queue_size=1000) for _ in range(2))
    taken = [(first.submit([record(i)]), second.submit([record(i)])) for i in range(400)]
    assert all(a == b for a, b in taken)
    assert 0.2 < sum(a for a, _ in taken) / 400 < 0.4  # about the rate: 120 expected, sd 9


def test_each_row_carries_its_position_in_the_request() -> None:
    sink = MemorySink()
    log = logger(sink).start()
    log.submit([Record(datetime.now(UTC), "req", f"t{i}", "positive", 0.9, {}, index=i) for i in range(3)])
    log.close()
    assert sorted((row["text"], row["index"]) for row in sink.rows()) == [("t0", 0), ("t1", 1), ("t2", 2)]


def test_a_tasks_own_fields_are_written_beside_the_common_ones() -> None:
    sink = MemorySink()
    log = logger(sink).start()
    citations = [{"source": "runbooks/high-latency.md", "section": "Checks", "score": 0.71}]
    extra = {"answer": "Check the p95.", "citations": citations}
    log.submit([Record(datetime.now(UTC), "req-9", "why is it slow?", "generated", 0.71, {}, extra=extra)])
    log.close()
    (row,) = sink.rows()
    assert (row["text"], row["label"], row["confidence"]) == ("why is it slow?", "generated", 0.71)
    assert row["citations"] == citations and row["answer"] == "Check the p95."
