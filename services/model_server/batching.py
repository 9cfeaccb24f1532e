"""Adaptive batching inside the worker: concurrent requests share one model call, with no added wait.

One consumer takes every text queued while the previous batch ran (up to `max_batch_size` texts) and runs them
as one ONNX Runtime call in the inference thread. At low load a request runs alone at once; under load batches
grow by themselves, which is where batching pays (one call for 16 texts costs far less than 16 calls).

Overload: when the texts already queued would take longer than `max_latency_ms` to clear at the measured speed,
a new request is refused at once (`Overloaded` -> HTTP 503) instead of timing out later. The limit is generous
(policy `batching_max_latency_ms`), so bursts queue rather than fail.

Why not BentoML's `batchable=True` API: calling it from `/classify` goes through the service's in-process HTTP
proxy, which measured twice the CPU per request of this path (docs/decisions/0051-in-process-batching.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

Infer = Callable[[list[str]], np.ndarray]  # texts -> (n, labels) probabilities


class Overloaded(RuntimeError):
    """The queue would take longer than the latency budget to clear."""


@dataclass
class _Pending:
    texts: list[str]
    future: asyncio.Future[np.ndarray]


@dataclass
class BatchStats:
    batches: int = 0
    texts: int = 0
    seconds_per_text: float = 0.002  # running estimate; first guess 2 ms
    sizes: list[int] = field(default_factory=list)  # for tests; bounded below


class AdaptiveBatcher:
    def __init__(
        self,
        infer: Infer,
        max_batch_size: int,
        max_latency_ms: float,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        self.infer = infer
        self.max_batch_size = max_batch_size
        self.max_latency_s = max_latency_ms / 1000
        self.on_batch = on_batch or (lambda _n: None)
        self.stats = BatchStats()
        self._queue: list[_Pending] = []
        self._queued_texts = 0
        self._wakeup: asyncio.Event | None = None
        self._consumer: asyncio.Task[None] | None = None
        # One inference thread: ONNX Runtime's own threads (policy ort_*_threads) do the parallel work.
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inference")

    async def submit(self, texts: list[str]) -> np.ndarray:
        if self._queued_texts and (self._queued_texts + len(texts)) * self.stats.seconds_per_text > self.max_latency_s:
            raise Overloaded(
                f"{self._queued_texts} texts already queued (~{self._queued_texts * self.stats.seconds_per_text:.2f}s "
                f"of work, budget {self.max_latency_s:.2f}s); retry shortly"
            )
        self._ensure_consumer()
        assert self._wakeup is not None
        future: asyncio.Future[np.ndarray] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(texts, future))
        self._queued_texts += len(texts)
        self._wakeup.set()
        return await future

    def _ensure_consumer(self) -> None:
        if self._consumer is None or self._consumer.done():
            self._wakeup = asyncio.Event()
            self._consumer = asyncio.get_running_loop().create_task(self._consume())

    def _take(self) -> list[_Pending]:
        """Whole requests, oldest first, up to max_batch_size texts (a request is never split)."""
        batch: list[_Pending] = []
        size = 0
        while self._queue and (not batch or size + len(self._queue[0].texts) <= self.max_batch_size):
            item = self._queue.pop(0)
            batch.append(item)
            size += len(item.texts)
        self._queued_texts -= size
        return batch

    async def _consume(self) -> None:
        assert self._wakeup is not None
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            batch = self._take()
            texts = [t for p in batch for t in p.texts]
            started = loop.time()
            try:
                probabilities = await loop.run_in_executor(self._pool, self.infer, texts)
            except Exception as exc:
                for p in batch:
                    if not p.future.done():
                        p.future.set_exception(exc)
                continue
            self._record(len(texts), loop.time() - started)
            offset = 0
            for p in batch:
                if not p.future.done():  # a cancelled request (client gone) is simply skipped
                    p.future.set_result(probabilities[offset : offset + len(p.texts)])
                offset += len(p.texts)

    def _record(self, n: int, seconds: float) -> None:
        s = self.stats
        s.batches += 1
        s.texts += n
        s.seconds_per_text = 0.8 * s.seconds_per_text + 0.2 * (seconds / max(n, 1))
        if len(s.sizes) < 10_000:
            s.sizes.append(n)
        self.on_batch(n)

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.cancel()
        self._pool.shutdown(wait=False, cancel_futures=True)
