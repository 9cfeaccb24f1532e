"""Adaptive batching: concurrent requests share model calls, each gets its own rows back, overload is refused."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from services.model_server.batching import AdaptiveBatcher, Overloaded


class SlowModel:
    """Returns row i = [i, -i] for the i-th text seen; holds each call until released (a busy model)."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.gate = threading.Event()

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.gate.wait(10)
        self.calls.append(list(texts))
        return np.array([[float(t), -float(t)] for t in texts])


def test_concurrent_requests_are_merged_and_answered_in_order() -> None:
    model = SlowModel()
    batcher = AdaptiveBatcher(model, max_batch_size=64, max_latency_ms=60_000)

    async def run() -> list[np.ndarray]:
        first = asyncio.ensure_future(batcher.submit(["0"]))  # occupies the model
        await asyncio.sleep(0.05)
        rest = [asyncio.ensure_future(batcher.submit([str(i), str(i + 100)])) for i in range(1, 6)]
        await asyncio.sleep(0.05)
        model.gate.set()
        return [await first, *[await r for r in rest]]

    results = asyncio.run(run())
    batcher.close()
    assert [len(c) for c in model.calls] == [1, 10]  # the five waiting requests ran as one call
    for i, rows in enumerate(results[1:], start=1):
        assert rows.tolist() == [[i, -i], [i + 100, -(i + 100)]]


def test_batches_never_exceed_the_maximum_nor_split_a_request() -> None:
    model = SlowModel()
    batcher = AdaptiveBatcher(model, max_batch_size=4, max_latency_ms=60_000)

    async def run() -> None:
        first = asyncio.ensure_future(batcher.submit(["0"]))
        await asyncio.sleep(0.05)
        rest = [asyncio.ensure_future(batcher.submit([str(i)] * 3)) for i in range(1, 4)]
        await asyncio.sleep(0.05)
        model.gate.set()
        await asyncio.gather(first, *rest)

    asyncio.run(run())
    batcher.close()
    assert [len(c) for c in model.calls] == [1, 3, 3, 3]


def test_overload_is_refused_at_once() -> None:
    model = SlowModel()
    batcher = AdaptiveBatcher(model, max_batch_size=8, max_latency_ms=10)
    batcher.stats.seconds_per_text = 0.005  # 5 ms a text: two queued texts already fill a 10 ms budget

    async def run() -> None:
        busy = asyncio.ensure_future(batcher.submit(["0"]))
        await asyncio.sleep(0.05)
        queued = asyncio.ensure_future(batcher.submit(["1", "2"]))
        await asyncio.sleep(0.01)
        with pytest.raises(Overloaded, match="already queued"):
            await batcher.submit(["3"])
        model.gate.set()
        await asyncio.gather(busy, queued)

    asyncio.run(run())
    batcher.close()


def test_model_errors_reach_every_request_of_the_batch() -> None:
    def broken(texts: list[str]) -> np.ndarray:
        raise RuntimeError("onnx failed")

    batcher = AdaptiveBatcher(broken, max_batch_size=8, max_latency_ms=1000)

    async def run() -> None:
        with pytest.raises(RuntimeError, match="onnx failed"):
            await batcher.submit(["a"])
        with pytest.raises(RuntimeError, match="onnx failed"):  # the consumer survives
            await batcher.submit(["b"])

    asyncio.run(run())
    batcher.close()
