"""Every packaged variant on its own runtime, measured in one run: the quantisation trade-off in one table.

For ONNX fp32 and int8 and each GGUF quantisation on llama.cpp: held-out accuracy and macro-F1, agreement with
fp32's labels, encoder file size, resident memory, single-request p50/p95, texts/s at batch 1/8/32, the cost of
1,000 inferences on the policy's CPU instance, and p50/p99 served through the gateway at 50 and 100 requests/s
(open loop, `serving_bench --variant`, against the local environment; `--no-served` leaves them out). Each variant
runs in a fresh process (its resident memory is its own), with the policy's threads (one per server, as served).
`make bench` prints the table and writes `build/reports/bench-runtime.json`; the figures are for this machine and
say so.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from core.cost import cost_per_1k, instance_throughput
from core.policy import policy
from infra.local.paths import build_dir
from pipelines.data import load_split
from pipelines.evaluation import evaluate, measure_latency
from pipelines.packaging.variants import VARIANTS
from services.model_runtime.classifier import TextClassifier
from services.model_runtime.runtimes import encoder_file, load_classifier

BATCH_SIZES = (1, 8, 32)
SERVED_RATES = (50, 100)  # requests/s through the gateway, one text each
SERVED_SECONDS = 10.0
REFERENCE = "fp32"  # agreement is measured against this variant's labels
THROUGHPUT_SECONDS = 3.0


def throughput(classifier: TextClassifier, texts: list[str], batch: int, seconds: float = THROUGHPUT_SECONDS) -> float:
    """Texts per second classified in batches of `batch`, for about `seconds`."""
    done, start, i = 0, time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        chunk = [texts[(i + k) % len(texts)] for k in range(batch)]
        classifier.predict(chunk)
        done += batch
        i += batch
    return done / (time.perf_counter() - start)


def bench_variant(model_dir: Path) -> dict[str, Any]:
    """Everything measured for one variant, in this process (run it in a fresh one: see `measure`)."""
    p = policy()
    threads = p.serving.ort_intra_op_threads
    started = time.perf_counter()
    classifier = load_classifier(model_dir, threads=threads, inter_op_threads=p.serving.ort_inter_op_threads)
    load_seconds = time.perf_counter() - started
    validation, heldout = load_split("validation"), load_split("heldout")
    texts = [ex.text for ex in validation]
    latency = measure_latency(
        classifier, texts, n=p.promotion.latency_requests, warmup=p.promotion.latency_warmup_requests
    )
    serving_rss_mb = resident_mb()  # loaded and answering single requests, as a quiet server is
    scores = evaluate(classifier, heldout)
    rates = {str(b): throughput(classifier, texts, b) for b in BATCH_SIZES}
    instance = p.prices.instances[p.prices.cpu_instance]
    best = max(rates.values())
    return {
        "variant": classifier.variant,
        "runtime": classifier.runtime,
        "heldout_accuracy": scores.accuracy,
        "heldout_macro_f1": scores.macro_f1,
        "heldout_labels": [pred.label for pred in classifier.predict([ex.text for ex in heldout])],
        "p50_ms": latency.p50_ms,
        "p95_ms": latency.p95_ms,
        "throughput_texts_per_s": rates,
        "encoder_mb": encoder_file(model_dir).stat().st_size / 1e6,
        "rss_single_requests_mb": serving_rss_mb,
        # The peak includes the evaluation in batches of 64 and the batch-32 throughput run.
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,  # KiB on Linux
        "load_seconds": load_seconds,
        "threads": threads,
        "cpu_instance": p.prices.cpu_instance,
        # The best measured batch size, scaled from `threads` vCPUs to the instance (core/cost.py).
        "usd_per_1k": cost_per_1k(instance.usd_per_hour, instance_throughput(best, threads, instance)),
    }


def resident_mb() -> float:
    """This process's resident memory now (Linux)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def measure(model_dir: Path) -> dict[str, Any]:
    """`bench_variant` in a fresh interpreter, so resident memory and caches are this variant's alone."""
    out = subprocess.run(
        [sys.executable, "-m", "pipelines.bench.runtime_bench", "--one", str(model_dir)],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"measuring {model_dir.name} failed:\n{out.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def served(variant: str) -> dict[str, dict[str, float]]:
    """p50/p99 and errors of the variant served through the gateway at each of SERVED_RATES (its own process)."""
    out_file = build_dir() / "reports" / "bench-served" / f"{variant}.json"
    cmd = [sys.executable, "-m", "pipelines.bench.serving_bench", "--variant", variant, "--layers", "gateway"]
    cmd += ["--rates", ",".join(map(str, SERVED_RATES)), "--seconds", str(SERVED_SECONDS), "--out", str(out_file)]
    run = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if run.returncode != 0:
        raise RuntimeError(f"serving {variant} through the gateway failed:\n{(run.stdout + run.stderr)[-2000:]}")
    report = json.loads(out_file.read_text())
    return {
        str(r["rate"]): {"p50_ms": r["p50_ms"], "p99_ms": r["p99_ms"], "errors": r["errors"], "sent": r["sent"]}
        for r in report["results"]
    }


def agreement(results: list[dict[str, Any]]) -> None:
    """Share of held-out texts each variant labels as the reference does (set in place)."""
    reference = next((r["heldout_labels"] for r in results if r["variant"] == REFERENCE), None)
    for r in results:
        labels = r.pop("heldout_labels")
        r["agreement_with_fp32"] = (
            None if reference is None else sum(a == b for a, b in zip(labels, reference, strict=True)) / len(labels)
        )


def table(results: list[dict[str, Any]]) -> Table:
    t = Table(
        "variant",
        "runtime",
        "held-out acc.",
        "macro-F1",
        f"agrees w/ {REFERENCE}",
        "encoder MB",
        "RSS MB (single / peak)",
        "p50 ms",
        "p95 ms",
        *[f"texts/s @{b}" for b in BATCH_SIZES],
        f"$/1k ({results[0]['cpu_instance']})" if results else "$/1k",
        *[f"served p50/p99 ms @{rate}/s" for rate in SERVED_RATES],
        title="Each variant on its runtime, single process, policy threads; served: through the gateway, open loop",
    )
    for r in results:
        agree = r["agreement_with_fp32"]
        t.add_row(
            r["variant"],
            r["runtime"],
            f"{r['heldout_accuracy']:.4f}",
            f"{r['heldout_macro_f1']:.4f}",
            "-" if agree is None else f"{agree:.3f}",
            f"{r['encoder_mb']:.1f}",
            f"{r['rss_single_requests_mb']:.0f} / {r['peak_rss_mb']:.0f}",
            f"{r['p50_ms']:.1f}",
            f"{r['p95_ms']:.1f}",
            *[f"{r['throughput_texts_per_s'][str(b)]:.0f}" for b in BATCH_SIZES],
            f"{r['usd_per_1k']:.6f}",
            *[_served_cell(r.get("served"), rate) for rate in SERVED_RATES],
        )
    return t


def _served_cell(served: dict[str, dict[str, float]] | None, rate: int) -> str:
    got = (served or {}).get(str(rate))
    if got is None:
        return "-"
    errors = f" ({got['errors']:.0f} err.)" if got["errors"] else ""
    return f"{got['p50_ms']:.0f} / {got['p99_ms']:.0f}{errors}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--one", type=Path, help="measure this packaged variant and print its JSON (internal)")
    parser.add_argument("--no-served", action="store_true", help="skip the served columns (no local environment)")
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(bench_variant(args.one)))
        return
    models = build_dir() / "models"
    # The variants that differ only in their encoder (the trade-off measured here), in the packaging order.
    same_model = [v.name for v in VARIANTS.values() if not v.few_shot_per_class and not v.max_seq_tokens]
    dirs = [models / name for name in same_model if (models / name / "model_config.json").exists()]
    console = Console(width=max(Console().width, 210))  # the table is wide; a pipe or CI log is not a terminal
    if not dirs:
        console.print(f"[red]No packaged variants in {models}.[/red] Run `make models` first.")
        raise SystemExit(1)
    console.print(
        f"Each packaged variant on {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        f"{policy().serving.ort_intra_op_threads} thread(s) per model, one variant at a time"
    )
    results = []
    for i, d in enumerate(dirs, 1):
        console.print(f"  [{i}/{len(dirs)}] measuring {d.name} (about 20 s) ...")
        results.append(measure(d))
        if not args.no_served:
            console.print(f"        serving {d.name} through the gateway at {SERVED_RATES} req/s ...")
            results[-1]["served"] = served(d.name)
    agreement(results)
    console.print(table(results))
    out = build_dir() / "reports" / "bench-runtime.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"cpu_count": os.cpu_count(), "results": results}, indent=2))
    console.print(f"written {out}")


if __name__ == "__main__":
    main()
