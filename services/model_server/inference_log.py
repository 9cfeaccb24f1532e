"""Inference logging off the request path: sampled inputs and outputs, gzipped JSON lines in S3.

A request only puts records on a bounded in-memory queue (`put_nowait`); a background thread drains it and
writes one object per `flush_records` records or `flush_seconds`, whichever comes first. When the queue is full
the records are dropped and counted (`mlp_inference_log_dropped_total`): logging never slows or fails a request.

Key layout (the drift job reads it): `model=<name>/version=<N>/date=YYYY-MM-DD/<HH>-<uuid>.jsonl.gz`, one JSON
object per text: ts, request_id, index (the text's position in its request), model_name, model_version, text,
label, confidence, scores, n_tokens; and what a task adds (`extra`: a RAG answer's mode, answer, citations,
pinned versions and step times, where `text` is the question and `label` the mode).

Sampling is decided by the request id, not by a coin per server: a request mirrored to a shadow candidate is logged
by both servers or by neither, so their answers pair (pipelines/shadow/compare.py).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from core.policy import Serving

logger = logging.getLogger("mlp.inference_log")

Sink = Callable[[str, bytes], None]  # (object key, gzipped JSON lines) -> stored, or raises


@dataclass(frozen=True)
class Record:
    """One classified text; `n_tokens` is counted later, in the writer thread (tokenising costs CPU)."""

    ts: datetime
    request_id: str
    text: str
    label: str
    confidence: float
    scores: dict[str, float]
    index: int = 0  # the text's position in its request
    mirrored: bool = False  # a copy the gateway mirrored during a release: the client got another version's answer
    extra: dict[str, Any] = field(default_factory=dict)  # a task's own fields beside the common ones


def request_draw(request_id: str) -> float:
    """A number in [0, 1) fixed by the request id: the same on every server that answers the request."""
    return int.from_bytes(hashlib.sha256(request_id.encode()).digest()[:8], "big") / 2**64


def object_key(model_name: str, model_version: int, when: datetime) -> str:
    when = when.astimezone(UTC)
    return f"model={model_name}/version={model_version}/date={when:%Y-%m-%d}/{when:%H}-{uuid.uuid4().hex}.jsonl.gz"


class InferenceLogger:
    def __init__(
        self,
        sink: Sink,
        *,
        model_name: str,
        model_version: int,
        queue_size: int,
        flush_records: int,
        flush_seconds: float,
        sample_rate: float,
        count_tokens: Callable[[list[str]], list[int]] | None = None,
        on_drop: Callable[[str, int], None] | None = None,
        draw: Callable[[str], float] = request_draw,
    ) -> None:
        self.sink = sink
        self.model_name = model_name
        self.model_version = model_version
        self.flush_records = flush_records
        self.flush_seconds = flush_seconds
        self.sample_rate = sample_rate
        self.count_tokens = count_tokens
        self.on_drop = on_drop or (lambda _reason, _n: None)
        self.draw = draw
        self._queue: queue.Queue[Record] = queue.Queue(maxsize=queue_size)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="inference-log-writer", daemon=True)
        self.dropped = 0  # also exported as a metric through on_drop
        self.written = 0
        self.objects = 0

    # ------------------------------------------------------------ request path (never blocks)

    def submit(self, records: Sequence[Record]) -> int:
        """Queue one request's records if the request is sampled; return how many were queued."""
        if not records or self.sample_rate <= 0 or self.draw(records[0].request_id) >= self.sample_rate:
            return 0
        queued = 0
        for record in records:
            try:
                self._queue.put_nowait(record)
                queued += 1
            except queue.Full:
                break
        if queued < len(records):
            self._drop("queue_full", len(records) - queued)
        return queued

    # ------------------------------------------------------------ writer thread

    def start(self) -> InferenceLogger:
        self._thread.start()
        return self

    def close(self, timeout: float = 10.0) -> None:
        """Flush what is queued and stop the writer (called at server shutdown)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        buffer: list[Record] = []
        deadline = 0.0
        while True:
            stopping = self._stop.is_set()
            wait = 0.2 if not buffer else max(0.0, min(0.2, deadline - time.monotonic()))
            try:
                record = self._queue.get(timeout=wait) if not stopping else self._queue.get_nowait()
                if not buffer:
                    deadline = time.monotonic() + self.flush_seconds
                buffer.append(record)
            except queue.Empty:
                if stopping:
                    break
            if buffer and (len(buffer) >= self.flush_records or time.monotonic() >= deadline):
                self._flush(buffer)
                buffer = []
        if buffer:
            self._flush(buffer)

    def _flush(self, records: list[Record]) -> None:
        # One object per hour of the batch, so the `<HH>-` prefix of a key tells the truth about its records.
        by_hour: dict[tuple[str, str], list[Record]] = {}
        for r in records:
            by_hour.setdefault((f"{r.ts.astimezone(UTC):%Y-%m-%d}", f"{r.ts.astimezone(UTC):%H}"), []).append(r)
        for group in by_hour.values():
            try:
                body = self._encode(group)
                self.sink(object_key(self.model_name, self.model_version, group[0].ts), body)
            except Exception as exc:  # a failing store must not kill the writer: count and go on
                logger.warning("inference log: could not write %d records (%s); dropped", len(group), exc)
                self._drop("sink_error", len(group))
                continue
            self.written += len(group)
            self.objects += 1

    def _encode(self, records: list[Record]) -> bytes:
        texts = [r.text for r in records]
        tokens = self.count_tokens(texts) if self.count_tokens else [0] * len(texts)
        lines = [json.dumps(self._row(r, n), ensure_ascii=False) for r, n in zip(records, tokens, strict=True)]
        return gzip.compress(("\n".join(lines) + "\n").encode("utf-8"))

    def _row(self, r: Record, n_tokens: int) -> dict[str, Any]:
        return {
            "ts": r.ts.astimezone(UTC).isoformat(),
            "request_id": r.request_id,
            "index": r.index,
            "model_name": self.model_name,
            "model_version": self.model_version,
            "text": r.text,
            "label": r.label,
            "confidence": r.confidence,
            "scores": r.scores,
            "n_tokens": int(n_tokens),
            **({"mirrored": True} if r.mirrored else {}),
            **r.extra,
        }

    def _drop(self, reason: str, n: int) -> None:
        self.dropped += n
        try:
            self.on_drop(reason, n)
        except Exception:  # metrics must never break the caller
            logger.exception("inference log: drop counter failed")


class S3Sink:
    """Writes objects to a bucket of an S3 API (the local rclone server, or S3 in the cluster via IRSA)."""

    def __init__(self, bucket: str, endpoint_url: str | None = None) -> None:
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        # Credentials and region come from the environment (AWS_ACCESS_KEY_ID..., set by the supervisor).
        self.client = boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3}, connect_timeout=5),
        )

    def __call__(self, key: str, body: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType="application/gzip")


def from_env(
    model_name: str,
    model_version: int,
    serving: Serving,
    on_drop: Callable[[str, int], None],
    count_tokens: Callable[[list[str]], list[int]] | None = None,
) -> InferenceLogger | None:
    """The started logger of a server, writing to the inference-log bucket (MLP_INFERENCE_LOG_BUCKET in the cluster,
    the local bucket otherwise); None when MLP_INFERENCE_LOG is `off` or the sample rate is 0."""
    import os

    from core import contracts, env

    if env.INFERENCE_LOG.get().lower() == "off" or serving.inference_log_sample_rate <= 0:
        return None
    return InferenceLogger(
        S3Sink(
            env.INFERENCE_LOG_BUCKET.get() or contracts.INFERENCE_LOG_BUCKET,
            endpoint_url=os.environ.get("AWS_ENDPOINT_URL_S3"),
        ),
        model_name=model_name,
        model_version=model_version,
        queue_size=serving.inference_log_queue_size,
        flush_records=serving.inference_log_flush_records,
        flush_seconds=serving.inference_log_flush_seconds,
        sample_rate=serving.inference_log_sample_rate,
        count_tokens=count_tokens,
        on_drop=on_drop,
    ).start()
