"""Open-loop load against one server: a fixed request rate for a fixed time, whatever the latency, and the
container's memory sampled meanwhile."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx

from infra.containers.podman import podman
from pipelines.gateway_client import RetryClosedKeepAlive

UNITS = {"kB": 1e3, "MB": 1e6, "GB": 1e9, "B": 1.0}


@dataclass
class LoadResult:
    sent: int
    seconds: float
    errors: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    peak_memory_bytes: float = 0.0
    # Requests sent again because the server closed their kept-alive connection before answering (a race of the
    # client's pool with the server's keep-alive timeout, not a failure of the server): counted, never hidden.
    keep_alive_retries: int = 0

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * q))] if ordered else float("nan")


def memory_bytes(container_id: str) -> float:
    used = podman("stats", "--no-stream", "--format", "{{.MemUsage}}", container_id).split("/")[0].strip()
    for unit, factor in UNITS.items():
        if used.endswith(unit):
            return float(used[: -len(unit)]) * factor
    raise ValueError(f"podman stats: cannot read {used!r}")


def open_loop(url: str, container_id: str, rate: float, seconds: float, text: str) -> LoadResult:
    """POST `{"texts": [text]}` to `url`/classify `rate` times a second for `seconds`; sample memory every second."""
    result = LoadResult(sent=int(rate * seconds), seconds=0.0)
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            result.peak_memory_bytes = max(result.peak_memory_bytes, memory_bytes(container_id))
            stop.wait(1.0)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    transport = RetryClosedKeepAlive(httpx.HTTPTransport(limits=httpx.Limits(max_connections=64)))
    with httpx.Client(base_url=url, timeout=10, transport=transport) as client:

        def one(i: int) -> None:
            started = time.monotonic()
            try:
                response = client.post("/classify", json={"texts": [f"{text} ({i})"]})
                if response.status_code != 200:
                    result.errors.append(f"HTTP {response.status_code}")
            except httpx.HTTPError as exc:
                result.errors.append(repr(exc))
            result.latencies.append(time.monotonic() - started)

        began = time.monotonic()
        with ThreadPoolExecutor(max_workers=64) as pool:
            for i in range(result.sent):
                delay = began + i / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                pool.submit(one, i)
        result.seconds = time.monotonic() - began
    result.keep_alive_retries = transport.retries
    stop.set()
    watcher.join()
    return result
