"""CPU throughput at the latency SLO, measured on this machine.

Preferred source: the serving benchmark's result file (`build/reports/bench-serving.json`, written by
`make bench`), which measures through the real HTTP server. Without it, a short in-process measurement with
ONNX Runtime on one thread (exactly one server worker: `serving.ort_intra_op_threads`), over held-out review
snippets, at several batch sizes.

"At the SLO": a worker kept busy with batches of `b` texts makes a new request wait for the batch in flight
and then its own, so its latency is up to twice a batch's. The chosen batch size is the largest whose
2 x p95 batch time stays within `slo.latency_p95_ms`; the throughput is that batch size's texts per CPU-second
of the process (not per wall-clock second), so other load on a shared machine does not lower the price per vCPU;
the latency check uses wall-clock time, so such load can only make the SLO check stricter.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from core.policy import Policy

BATCH_SIZES = (1, 2, 4, 8, 16, 32)
QUEUEING_FACTOR = 2.0  # worst-case wait for the batch in flight, see module docstring


@dataclass(frozen=True)
class BatchTiming:
    batch_size: int
    p50_ms: float
    p95_ms: float
    texts_per_second: float  # wall clock
    texts_per_cpu_second: float  # process CPU time: what one fully used vCPU serves


@dataclass(frozen=True)
class CpuThroughput:
    """Inferences/s that `vcpus` sustain within the latency SLO, and where the figure comes from."""

    inferences_per_second: float
    vcpus: float
    batch_size: int
    p95_ms: float
    source: str
    variant: str
    cpu_model: str
    timings: list[BatchTiming]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def choose(timings: list[BatchTiming], slo_p95_ms: float) -> BatchTiming:
    """The highest-throughput batch size whose queueing-adjusted p95 meets the SLO."""
    fitting = [t for t in timings if t.p95_ms * QUEUEING_FACTOR <= slo_p95_ms]
    if not fitting:
        fastest = min(timings, key=lambda t: t.p95_ms)
        raise ValueError(
            f"no batch size meets the {slo_p95_ms:g} ms p95 SLO on this CPU (best: batch {fastest.batch_size}, "
            f"p95 {fastest.p95_ms:.1f} ms x {QUEUEING_FACTOR:g}); the SLO cannot be priced on CPU here"
        )
    return max(fitting, key=lambda t: t.texts_per_cpu_second)


def time_batches(
    predict: Callable[[list[str]], object],
    texts: list[str],
    batch_sizes: tuple[int, ...] = BATCH_SIZES,
    seconds_per_size: float = 2.0,
    progress: Callable[[str], None] = lambda _m: None,
) -> list[BatchTiming]:
    """Time `predict` on consecutive batches of `texts` for about `seconds_per_size` per batch size."""
    timings = []
    for size in batch_sizes:
        predict([texts[k % len(texts)] for k in range(size)])  # warm-up: first call allocates
        durations: list[float] = []
        done, i = 0, 0
        cpu_started = time.process_time()
        started = time.perf_counter()
        while time.perf_counter() - started < seconds_per_size or len(durations) < 20:
            batch = [texts[(i + k) % len(texts)] for k in range(size)]
            i += size
            t0 = time.perf_counter()
            predict(batch)
            durations.append(time.perf_counter() - t0)
            done += size
        cpu = max(time.process_time() - cpu_started, 1e-9)
        ms = sorted(d * 1000 for d in durations)
        timing = BatchTiming(
            size, statistics.median(ms), ms[int(0.95 * (len(ms) - 1))], done / sum(durations), done / cpu
        )
        progress(
            f"batch {size:>2}: p50 {timing.p50_ms:6.1f} ms  p95 {timing.p95_ms:6.1f} ms  "
            f"{timing.texts_per_second:7.1f} texts/s, {timing.texts_per_cpu_second:7.1f} per CPU-s"
        )
        timings.append(timing)
    return timings


def measure_runtime(
    model_dir: Path,
    texts: list[str],
    p: Policy,
    seconds_per_size: float = 2.0,
    progress: Callable[[str], None] = lambda _m: None,
) -> CpuThroughput:
    from pipelines.evaluation import engine
    from services.model_runtime.runtimes import load_classifier

    threads = p.serving.ort_intra_op_threads
    model = load_classifier(model_dir, threads=threads, inter_op_threads=1)
    timings = time_batches(model.predict, texts, seconds_per_size=seconds_per_size, progress=progress)
    best = choose(timings, p.slo.latency_p95_ms)
    return CpuThroughput(
        inferences_per_second=best.texts_per_cpu_second,
        vcpus=float(threads),
        batch_size=best.batch_size,
        p95_ms=best.p95_ms,
        source=f"in-process {engine(model)}, {threads} thread(s), {len(texts)} held-out snippets (pipelines/cost)",
        variant=model.variant,
        cpu_model=cpu_model(),
        timings=timings,
    )


def from_bench_file(path: Path) -> CpuThroughput | None:
    """Read the serving benchmark's result if it carries what pricing needs; None otherwise.

    Expected keys: `inferences_per_second` (sustained at the SLO), `vcpus` (CPUs the server used), `p95_ms`,
    and optionally `batch_size`, `variant`, `cpu_model`.
    """
    if not path.exists():
        return None
    raw = json.loads(path.read_text())
    try:
        return CpuThroughput(
            inferences_per_second=float(raw["inferences_per_second"]),
            vcpus=float(raw["vcpus"]),
            batch_size=int(raw.get("batch_size", 0)),
            p95_ms=float(raw["p95_ms"]),
            source=f"serving benchmark ({path.name})",
            variant=str(raw.get("variant", "?")),
            cpu_model=str(raw.get("cpu_model", cpu_model())),
            timings=[],
        )
    except (KeyError, TypeError, ValueError):
        return None


def local_vcpus() -> int:
    return os.cpu_count() or 1
