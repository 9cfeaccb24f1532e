"""Inference-log layout and parsing (the S3 round trip is in tests/integration/test_drift.py)."""

from __future__ import annotations

import gzip
import json
import re
from datetime import UTC, datetime, timedelta

from pipelines.drift import logs
from tests.pipelines.memory_s3 import MemoryS3


def test_object_key_follows_the_contract() -> None:
    ts = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    key = logs.object_key("review-polarity-classifier", 12, ts)
    assert re.fullmatch(r"model=review-polarity-classifier/version=12/date=2026-03-04/05-[0-9a-f]{32}\.jsonl\.gz", key)


def test_timestamps_without_zone_are_utc() -> None:
    assert logs.parse_ts("2026-03-04T05:06:07") == datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    assert logs.parse_ts("2026-03-04T05:06:07Z") == datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    assert logs.parse_ts("2026-03-04T07:06:07+02:00") == datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


def test_window_is_half_open() -> None:
    end = datetime(2026, 3, 4, 12, tzinfo=UTC)
    window = logs.Window.last_hours(2, end)
    assert end - timedelta(hours=2) in window
    assert end not in window
    assert list(logs._days(logs.Window(end - timedelta(days=2), end))) == ["2026-03-02", "2026-03-03", "2026-03-04"]


def test_files_of_hours_outside_the_window_are_skipped() -> None:
    window = logs.Window(datetime(2026, 3, 4, 10, 30, tzinfo=UTC), datetime(2026, 3, 4, 12, 0, tzinfo=UTC))
    day = "2026-03-04"
    assert not logs._file_may_overlap(f"p/date={day}/07-abc.jsonl.gz", day, window)
    assert logs._file_may_overlap(f"p/date={day}/09-abc.jsonl.gz", day, window)  # late flush of hour 9
    assert logs._file_may_overlap(f"p/date={day}/11-abc.jsonl.gz", day, window)
    assert not logs._file_may_overlap(f"p/date={day}/12-abc.jsonl.gz", day, window)
    assert logs._file_may_overlap(f"p/date={day}/other-name.jsonl.gz", day, window)


def test_malformed_lines_are_counted_not_fatal() -> None:
    good = {"ts": "2026-03-04T05:06:07Z", "text": "fine", "label": "positive", "confidence": 0.8}
    lines = [json.dumps(good), "{not json", json.dumps({"ts": "2026-03-04T05:06:07Z"}), "[1, 2]", ""]
    s3 = MemoryS3()
    key = logs.object_key("m", 3, datetime(2026, 3, 4, 5, tzinfo=UTC))
    s3.put_object(Bucket="logs", Key=key, Body=gzip.compress("\n".join(lines).encode()))
    stats = logs.ReadStats()
    window = logs.Window(datetime(2026, 3, 4, tzinfo=UTC), datetime(2026, 3, 5, tzinfo=UTC))
    parsed = logs.read_records(s3, "logs", "m", 3, window, stats)
    assert [r.text for r in parsed] == ["fine"] and (stats.files, stats.records, stats.malformed) == (1, 1, 3)


def test_mirrored_copies_are_not_read_as_this_versions_traffic() -> None:
    """A mirrored request's client was answered by another version, whose log holds the same text: drift reads it
    there, once."""
    served = {"ts": "2026-03-04T05:06:07Z", "text": "served", "label": "positive", "confidence": 0.8}
    mirrored = {**served, "text": "mirrored", "mirrored": True}
    s3 = MemoryS3()
    key = logs.object_key("m", 3, datetime(2026, 3, 4, 5, tzinfo=UTC))
    s3.put_object(Bucket="logs", Key=key, Body=gzip.compress(f"{json.dumps(served)}\n{json.dumps(mirrored)}".encode()))
    window = logs.Window(datetime(2026, 3, 4, tzinfo=UTC), datetime(2026, 3, 5, tzinfo=UTC))
    assert [r.text for r in logs.read_records(s3, "logs", "m", 3, window)] == ["served"]
