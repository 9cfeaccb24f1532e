"""The inference log in S3 (written by the model servers, read here).

Layout (the contract): `model=<name>/version=<N>/date=YYYY-MM-DD/<hour>-<uuid>.jsonl.gz`, one JSON object per
text: `{"ts", "request_id", "index", "model_name", "model_version", "text", "label", "confidence", "scores",
"n_tokens"}`.
`write_records` writes the same layout; tests and fixtures use it because the format, not the writer, is the
contract.
"""

from __future__ import annotations

import gzip
import json
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

REQUIRED_FIELDS = ("ts", "text", "label", "confidence")


@dataclass(frozen=True)
class LoggedInference:
    ts: datetime
    text: str
    label: str
    confidence: float


@dataclass(frozen=True)
class Window:
    """[since, until) in UTC."""

    since: datetime
    until: datetime

    @classmethod
    def last_hours(cls, hours: float, until: datetime | None = None) -> Window:
        end = until or datetime.now(UTC)
        return cls(end - timedelta(hours=hours), end)

    def __contains__(self, ts: datetime) -> bool:
        return self.since <= ts < self.until


@dataclass
class ReadStats:
    files: int = 0
    records: int = 0
    malformed: int = 0


def parse_ts(value: str) -> datetime:
    """ISO 8601; a timestamp without a zone is taken as UTC."""
    ts = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def version_prefix(model_name: str, version: int) -> str:
    return f"model={model_name}/version={version}/"


def object_key(model_name: str, version: int, ts: datetime) -> str:
    ts = ts.astimezone(UTC)
    return f"{version_prefix(model_name, version)}date={ts:%Y-%m-%d}/{ts:%H}-{uuid.uuid4().hex}.jsonl.gz"


def _days(window: Window) -> Iterator[str]:
    day = window.since.astimezone(UTC).date()
    while day <= window.until.astimezone(UTC).date():
        yield day.isoformat()
        day += timedelta(days=1)


def _file_may_overlap(key: str, day: str, window: Window) -> bool:
    """Keys start with the hour of their first record: skip files of hours wholly outside the window."""
    hour = key.rsplit("/", 1)[-1].split("-", 1)[0]
    if not hour.isdigit():
        return True  # not our naming: read it and filter by record timestamp
    start = datetime.fromisoformat(f"{day}T{int(hour):02d}:00:00+00:00")
    # A file opened in hour H may hold records of H+1 (flushed late): allow one hour of slack.
    return start < window.until and start + timedelta(hours=2) > window.since


def read_rows(
    client: Any, bucket: str, model_name: str, version: int, window: Window, stats: ReadStats
) -> Iterator[dict[str, Any]]:
    """The JSON objects of every log file of (model, version) that may hold records of the window (unfiltered:
    the caller checks each row's `ts`). A line that is not a JSON object is counted as malformed and skipped."""
    paginator = client.get_paginator("list_objects_v2")
    for day in _days(window):
        prefix = f"{version_prefix(model_name, version)}date={day}/"
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                if not _file_may_overlap(obj["Key"], day, window):
                    continue
                body = client.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
                stats.files += 1
                yield from _json_lines(gzip.decompress(body), stats)


def read_records(
    client: Any, bucket: str, model_name: str, version: int, window: Window, stats: ReadStats | None = None
) -> list[LoggedInference]:
    """Every logged inference of (model, version) whose `ts` falls in the window, oldest first."""
    stats = stats if stats is not None else ReadStats()
    found: list[LoggedInference] = []
    for raw in read_rows(client, bucket, model_name, version, window, stats):
        if raw.get("mirrored"):
            continue  # a mirrored copy: the text is read where the client was answered (pipelines/shadow)
        try:
            record = LoggedInference(
                parse_ts(str(raw["ts"])), str(raw["text"]), str(raw["label"]), float(raw["confidence"])
            )
        except (ValueError, KeyError, TypeError):
            stats.malformed += 1  # one bad line must not sink the whole check
            continue
        if record.ts in window:
            found.append(record)
    stats.records = len(found)
    return sorted(found, key=lambda r: r.ts)


def _json_lines(data: bytes, stats: ReadStats) -> Iterator[dict[str, Any]]:
    for line in data.decode("utf-8", errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except ValueError:
            stats.malformed += 1
            continue
        if isinstance(raw, dict):
            yield raw
        else:
            stats.malformed += 1


def write_records(client: Any, bucket: str, model_name: str, version: int, records: Iterable[dict[str, Any]]) -> str:
    """Write one log file in the contract layout (keyed by the first record's hour); return its key."""
    rows = list(records)
    if not rows:
        raise ValueError("no records to write")
    missing = [f for f in REQUIRED_FIELDS if f not in rows[0]]
    if missing:
        raise ValueError(f"inference log records need {', '.join(missing)}")
    key = object_key(model_name, version, parse_ts(str(rows[0]["ts"])))
    body = "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows).encode()
    client.put_object(Bucket=bucket, Key=key, Body=gzip.compress(body), ContentType="application/x-ndjson")
    return key
