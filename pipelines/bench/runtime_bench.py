"""Raw ONNX Runtime figures per packaged variant: single-request p50/p95 and batch throughput, accuracy beside.

`make bench` prints the table and writes `build/reports/bench-runtime.json`. Threads follow the policy
(one intra-op thread per server, as served); the figures are for this machine and say so.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from core.policy import policy
from infra.local.paths import build_dir
from pipelines.data import load_split
from pipelines.evaluation import evaluate, measure_latency
from services.model_runtime.classifier import OnnxTextClassifier

BATCH_SIZES = (1, 8, 32)


def throughput(classifier: OnnxTextClassifier, texts: list[str], batch: int, seconds: float = 3.0) -> float:
    """Texts per second classified in batches of `batch`, for about `seconds`."""
    done, start, i = 0, time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        chunk = [texts[(i + k) % len(texts)] for k in range(batch)]
        classifier.predict(chunk)
        done += batch
        i += batch
    return done / (time.perf_counter() - start)


def bench_variant(model_dir: Path) -> dict[str, Any]:
    p = policy()
    classifier = OnnxTextClassifier.load(model_dir, p.serving.ort_intra_op_threads, p.serving.ort_inter_op_threads)
    validation = load_split("validation")
    texts = [ex.text for ex in validation]
    latency = measure_latency(
        classifier, texts, n=p.promotion.latency_requests, warmup=p.promotion.latency_warmup_requests
    )
    accuracy = evaluate(classifier, validation).accuracy
    return {
        "variant": classifier.variant,
        "accuracy": accuracy,
        "p50_ms": latency.p50_ms,
        "p95_ms": latency.p95_ms,
        "throughput_texts_per_s": {str(b): throughput(classifier, texts, b) for b in BATCH_SIZES},
        "model_mb": (model_dir / "model.onnx").stat().st_size / 1e6,
    }


def main() -> None:
    models = build_dir() / "models"
    dirs = sorted(d for d in models.iterdir() if (d / "model_config.json").exists()) if models.exists() else []
    console = Console()
    if not dirs:
        console.print(f"[red]No packaged variants in {models}.[/red] Run `make models` first.")
        raise SystemExit(1)
    console.print(
        f"Raw ONNX Runtime on {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        f"{policy().serving.ort_intra_op_threads} intra-op thread(s), spinning off"
    )
    results = []
    for d in dirs:
        console.print(f"  measuring {d.name} ...")
        results.append(bench_variant(d))
    table = Table(
        "variant",
        "val. accuracy",
        "p50 ms",
        "p95 ms",
        *[f"texts/s @batch {b}" for b in BATCH_SIZES],
        "MB",
        title="raw ONNX Runtime, single process",
    )
    for r in results:
        table.add_row(
            r["variant"],
            f"{r['accuracy']:.4f}",
            f"{r['p50_ms']:.1f}",
            f"{r['p95_ms']:.1f}",
            *[f"{r['throughput_texts_per_s'][str(b)]:.0f}" for b in BATCH_SIZES],
            f"{r['model_mb']:.0f}",
        )
    console.print(table)
    out = build_dir() / "reports" / "bench-runtime.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"cpu_count": os.cpu_count(), "results": results}, indent=2))
    console.print(f"written {out}")


if __name__ == "__main__":
    main()
