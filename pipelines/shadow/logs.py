"""A version's answers from the inference log in S3, as `compare` pairs them."""

from __future__ import annotations

from typing import Any

from pipelines.drift.logs import ReadStats, Window, parse_ts, read_rows
from pipelines.shadow.compare import Answer


def read_answers(
    client: Any, bucket: str, model_name: str, version: int, window: Window, stats: ReadStats | None = None
) -> list[Answer]:
    """Every logged answer of (model, version) in the window. A row without a request id cannot pair and counts as
    malformed; one without a position (written before positions were logged) is its request's first text."""
    stats = stats if stats is not None else ReadStats()
    found: list[Answer] = []
    for raw in read_rows(client, bucket, model_name, version, window, stats):
        try:
            ts = parse_ts(str(raw["ts"]))
            answer = Answer(
                str(raw["request_id"]), int(raw.get("index", 0)), str(raw["label"]), float(raw["confidence"])
            )
        except (ValueError, KeyError, TypeError):
            stats.malformed += 1
            continue
        if ts in window:
            found.append(answer)
    stats.records = len(found)
    return found
