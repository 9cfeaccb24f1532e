"""GPU against CPU, measured: the served classifier (all-MiniLM-L6-v2 encoder + the fp32 variant's logistic-regression
head) on PyTorch, on every device of the machine it runs on.

Self-contained on purpose: it imports torch, transformers, tokenizers, numpy and the standard library only, so a lent
GPU machine runs it with the folder that pipelines/packaging/gpu_export.py writes and nothing else of the project:
    python3 pipelines/bench/gpu_bench.py --model-dir build/gpu-bench --out $OUT/gpu-bench.json
and this machine (CPU only) with the packaging env:
    .venv-pack/bin/python -m pipelines.bench.gpu_bench --model-dir build/gpu-bench --out FILE.json [--quick]

For each device (cpu always, cuda when torch sees one) and precision (fp32 on both; fp16 and bf16 on cuda):
1. load: weights from disk to the device, then one text classified (time to first answer);
2. check: probabilities on the reference texts against the packaged fp32 ONNX model's (`reference.json`); a
   precision that fails is not timed, and the exit status is 1;
3. latency of single requests end to end (tokenise, copy in, encoder, pooling, head, copy out): p50/p95/p99;
4. throughput at each batch size, end to end and for the model alone (pre-tokenised batches already on the device).
Warm-up calls come first; host clocks are read only after torch.cuda.synchronize(), the model-alone GPU time is
taken with CUDA events; each figure is the median of repeated calls over real validation texts, cycled, so
consecutive calls see different texts and padded lengths. Writes every figure to --out and prints a table.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

SCHEMA = 1
WEIGHTS_FILE, HEAD_FILE, TOKENIZER_FILE, REFERENCE_FILE = (
    "model.safetensors",
    "model_config.json",
    "tokenizer.json",
    "reference.json",
)
BATCH_SIZES = (1, 8, 32, 128, 512)
QUICK_BATCH_SIZES = (1, 8, 32)
CHECK_BATCH = 64  # the batch size the reference was computed with (gpu_export.REFERENCE_BATCH)
# Largest |p - p_ref| over the reference texts, per precision the encoder computes in. The weights travel in fp16
# (the folder must fit a device call), so even fp32 compute differs from the fp32 ONNX model by their rounding.
# Measured on this project's CPU over the 750 validation texts (2026-12-03): fp32 4.4e-4, fp16 7.9e-4, bf16 5.8e-3,
# no label changed. Each bound is about 5x that, room for the GPU's other kernels (cuBLAS, fused attention); a
# flipped head or a broken pooling moves probabilities by tenths, far beyond it.
TOLERANCE = {"fp32": 2e-3, "fp16": 5e-3, "bf16": 3e-2}
VERSIONS = ("torch", "transformers", "tokenizers", "safetensors", "numpy", "onnxruntime", "sentence-transformers")


@dataclass
class Settings:
    batch_sizes: tuple[int, ...]
    latency_requests: int
    warmup_calls: int
    min_calls: int  # per batch size: at least this many timed calls ...
    min_seconds: float  # ... and at least this long ...
    max_calls: int  # ... but no more than this many
    check_texts: int  # reference texts checked (0: all)


FULL = Settings(BATCH_SIZES, 300, warmup_calls=5, min_calls=5, min_seconds=1.0, max_calls=200, check_texts=0)
QUICK = Settings(QUICK_BATCH_SIZES, 20, warmup_calls=1, min_calls=3, min_seconds=0.0, max_calls=3, check_texts=64)


@dataclass
class Check:
    texts: int
    tolerance: float
    max_abs_diff: float
    label_mismatches: int
    near_ties: int  # reference texts whose two top probabilities are within 2 x tolerance: either label is right
    mismatches_outside_ties: int
    passed: bool


@dataclass
class BatchResult:
    batch_size: int
    calls: int
    p50_ms: float  # end to end, per call
    p95_ms: float
    texts_per_second: float  # end to end, from the median call
    model_p50_ms: float | None = None  # cuda: encoder + pooling + head on pre-tokenised inputs already on the GPU
    model_texts_per_second: float | None = None
    texts_per_cpu_second: float | None = None  # cpu: texts over the process's CPU time


@dataclass
class Run:
    device: str
    dtype: str
    load_seconds: float = 0.0
    first_answer_seconds: float = 0.0
    time_to_first_answer_seconds: float = 0.0  # the two above; a cold process adds the `startup` figures
    check: Check | None = None
    latency_ms: dict[str, float] = field(default_factory=dict)
    batches: list[BatchResult] = field(default_factory=list)
    weights_mib: float | None = None  # cuda: memory allocated after load
    max_memory_allocated_mib: float | None = None  # cuda: peak over the load, check and every timing
    attention: str = ""  # the attention kernel transformers chose (sdpa, eager)
    error: str = ""  # an exception that stopped this run: the others still run, and the exit status is 1


def percentile(sorted_ms: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    return sorted_ms[max(0, min(len(sorted_ms) - 1, math.ceil(q / 100 * len(sorted_ms)) - 1))]


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# ---------------------------------------------------------------- the model, as the served one computes it


class Classifier:
    """Tokenizer + BERT + mean pooling + L2 normalisation (as `export_encoder` puts in the ONNX graph) + the head
    (softmax over coef . embedding + intercept, as services/model_runtime/classifier.py applies it)."""

    def __init__(self, model_dir: Path, device: str, dtype: str) -> None:
        import torch
        from tokenizers import Tokenizer
        from transformers import AutoModel

        self.torch, self.device = torch, torch.device(device)
        config = json.loads((model_dir / HEAD_FILE).read_text())
        self.labels: list[str] = list(config["labels"])
        self.tokenizer = Tokenizer.from_file(str(model_dir / TOKENIZER_FILE))
        self.tokenizer.enable_truncation(max_length=int(config["max_seq_tokens"]))
        if config["padding"] == "fixed":
            self.tokenizer.enable_padding(length=int(config["max_seq_tokens"]))
        else:
            self.tokenizer.enable_padding()  # to the longest text of the batch, as the server does
        # Loaded at the checkpoint's dtype, then cast: the keyword for the load dtype differs between versions.
        model = AutoModel.from_pretrained(str(model_dir), local_files_only=True)
        self.model = model.to(device=self.device, dtype=getattr(torch, DTYPES[dtype])).eval()
        self.attention = str(getattr(self.model.config, "_attn_implementation", "?"))
        self.coef = torch.tensor(config["head"]["coef"], dtype=torch.float32, device=self.device)
        self.intercept = torch.tensor(config["head"]["intercept"], dtype=torch.float32, device=self.device)

    def tokenize(self, texts: list[str]) -> tuple[Any, Any, Any]:
        encodings = self.tokenizer.encode_batch(texts)
        arrays = (
            np.asarray([e.ids for e in encodings], dtype=np.int64),
            np.asarray([e.attention_mask for e in encodings], dtype=np.int64),
            np.asarray([e.type_ids for e in encodings], dtype=np.int64),
        )
        ids, mask, types = (self.torch.from_numpy(a).to(self.device) for a in arrays)
        return ids, mask, types

    def forward(self, ids: Any, mask: Any, types: Any) -> Any:
        """Probabilities (n x labels, float32, on the device)."""
        torch = self.torch
        hidden = self.model(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
        embeddings = torch.nn.functional.normalize(pooled, p=2, dim=1).float()
        return torch.softmax(embeddings @ self.coef.T + self.intercept, dim=1)

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        """End to end: texts in, probabilities on the host out (the copy back waits for the device)."""
        return np.asarray(self.forward(*self.tokenize(texts)).cpu().numpy())


DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


def synchronize(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


def check(model: Classifier, reference: dict[str, Any], dtype: str, limit: int) -> Check:
    """The device's probabilities against the packaged ONNX model's, text by text."""
    texts, expected = reference["texts"], np.asarray(reference["probabilities"], dtype=np.float64)
    if limit:
        texts, expected = texts[:limit], expected[:limit]
    got = np.vstack([model.predict_proba(texts[i : i + CHECK_BATCH]) for i in range(0, len(texts), CHECK_BATCH)])
    tolerance = TOLERANCE[dtype]
    diff = float(np.abs(got - expected).max()) if np.isfinite(got).all() else math.inf  # NaN never passes
    top2 = np.sort(expected, axis=1)[:, -2:]
    tie = (top2[:, 1] - top2[:, 0]) <= 2 * tolerance
    wrong = got.argmax(axis=1) != expected.argmax(axis=1)
    outside = int((wrong & ~tie).sum())
    return Check(
        len(texts), tolerance, diff, int(wrong.sum()), int(tie.sum()), outside, diff <= tolerance and not outside
    )


# ---------------------------------------------------------------- timing


def batches_of(texts: list[str], size: int, count: int) -> list[list[str]]:
    """`count` consecutive batches of real texts, cycling through them."""
    return [[texts[(i * size + k) % len(texts)] for k in range(size)] for i in range(count)]


def time_calls(
    fn: Callable[[list[str]], Any], inputs: list[list[str]], device: str, s: Settings
) -> tuple[list[float], float]:
    """Seconds per call, host clock read after the device finished, and the process CPU seconds of the timed calls;
    warm-up calls not counted."""
    for batch in inputs[: warmup(s, device)]:
        fn(batch)
    synchronize(device)
    out: list[float] = []
    started, cpu_started = time.perf_counter(), time.process_time()
    while len(out) < s.max_calls and (len(out) < s.min_calls or time.perf_counter() - started < s.min_seconds):
        batch = inputs[len(out) % len(inputs)]
        t0 = time.perf_counter()
        fn(batch)
        synchronize(device)
        out.append(time.perf_counter() - t0)
    return out, time.process_time() - cpu_started


def warmup(s: Settings, device: str) -> int:
    """Warm-up calls: on cuda the first calls of a shape load kernels and pick algorithms; on the CPU one call
    allocates what the next ones reuse, and a CPU call at batch 512 takes seconds."""
    return s.warmup_calls if device == "cuda" else 1


def time_model(model: Classifier, inputs: list[list[str]], device: str, s: Settings) -> list[float]:
    """Seconds per call of the model alone on pre-tokenised inputs already on the device (CUDA events on cuda)."""
    torch = model.torch
    ready = [model.tokenize(batch) for batch in inputs[:4]]  # a few distinct batches: not one cached input
    for k in range(warmup(s, device)):
        model.forward(*ready[k % len(ready)])
    synchronize(device)
    out: list[float] = []
    started = time.perf_counter()
    while len(out) < s.max_calls and (len(out) < s.min_calls or time.perf_counter() - started < s.min_seconds):
        tensors = ready[len(out) % len(ready)]
        if device == "cuda":
            begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            begin.record()
            model.forward(*tensors)
            end.record()
            end.synchronize()
            out.append(begin.elapsed_time(end) / 1000)
        else:
            t0 = time.perf_counter()
            model.forward(*tensors)
            out.append(time.perf_counter() - t0)
    return out


def measure(model_dir: Path, device: str, dtype: str, reference: dict[str, Any], s: Settings) -> Run:
    import torch

    run = Run(device, dtype)
    texts: list[str] = reference["texts"]
    if device == "cuda":
        gc.collect()  # the previous precision's model, so its memory is not counted in this one's peak
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    with torch.inference_mode():
        t0 = time.perf_counter()
        model = Classifier(model_dir, device, dtype)
        synchronize(device)
        t1 = time.perf_counter()
        run.attention = model.attention
        model.predict_proba(texts[:1])
        t2 = time.perf_counter()
        run.load_seconds, run.first_answer_seconds, run.time_to_first_answer_seconds = t1 - t0, t2 - t1, t2 - t0
        if device == "cuda":
            run.weights_mib = torch.cuda.memory_allocated() / 2**20
        run.check = check(model, reference, dtype, s.check_texts)
        progress(
            f"{device} {dtype}: loaded and answered in {run.time_to_first_answer_seconds:.2f} s; check "
            f"{'passed' if run.check.passed else 'FAILED'} (max |dp| {run.check.max_abs_diff:.1e}, "
            f"tolerance {run.check.tolerance:.0e})"
        )
        if not run.check.passed:
            return peak_memory(run)
        exactly = replace(s, min_calls=s.latency_requests, max_calls=s.latency_requests)
        calls, _ = time_calls(model.predict_proba, batches_of(texts, 1, s.latency_requests), device, exactly)
        single = sorted(1000 * t for t in calls)
        run.latency_ms = {
            "requests": len(single),
            "p50": percentile(single, 50),
            "p95": percentile(single, 95),
            "p99": percentile(single, 99),
        }
        for size in s.batch_sizes:
            inputs = batches_of(texts, size, max(4, min(s.max_calls, math.ceil(len(texts) / size))))
            calls, cpu = time_calls(model.predict_proba, inputs, device, s)
            ms = sorted(1000 * t for t in calls)
            result = BatchResult(
                size, len(calls), statistics.median(ms), percentile(ms, 95), size / statistics.median(calls)
            )
            if device == "cuda":  # on the CPU the model alone is the end-to-end time less tokenising: not worth a rerun
                alone = statistics.median(time_model(model, inputs, device, s))
                result.model_p50_ms, result.model_texts_per_second = 1000 * alone, size / alone
            else:
                result.texts_per_cpu_second = size * len(calls) / cpu if cpu > 0 else None
            run.batches.append(result)
            progress(
                f"{device} {dtype} batch {size:>3}: p50 {result.p50_ms:8.2f} ms, {result.texts_per_second:9.1f} texts/s"
                + (f" ({result.model_texts_per_second:.1f} the model alone)" if result.model_texts_per_second else "")
            )
    return peak_memory(run)


def peak_memory(run: Run) -> Run:
    if run.device == "cuda":
        import torch

        run.max_memory_allocated_mib = torch.cuda.max_memory_allocated() / 2**20
    return run


def warm_start(model_dir: Path, devices: list[str]) -> dict[str, float]:
    """What a process pays once, before any model: the first load pulls in the rest of transformers, and the first
    CUDA call creates the context. Taken out here so each run's load time is the model's alone."""
    import torch
    from transformers import AutoModel

    t0 = time.perf_counter()
    AutoModel.from_pretrained(str(model_dir), local_files_only=True)
    out = {"first_model_load_seconds": time.perf_counter() - t0}
    if "cuda" in devices:
        t0 = time.perf_counter()
        torch.zeros(1, device="cuda")
        torch.cuda.synchronize()
        out["cuda_init_seconds"] = time.perf_counter() - t0
    return out


# ---------------------------------------------------------------- what ran where


def progress(message: str) -> None:
    print(f"  {time.strftime('%H:%M:%S')} {message}", flush=True)


def versions() -> dict[str, str]:
    found = {}
    for name in VERSIONS:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def nvidia_driver() -> str:
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        return out.stdout.strip().splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        return "unknown (nvidia-smi unavailable)"


def environment(devices: list[str]) -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {
        "platform": platform.platform(),  # kernel and libc, no host name
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu": {
            "name": cpu_name(),
            "count": os.cpu_count(),
            "usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
        },
        "versions": versions(),
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
    }
    if "cuda" in devices:
        props = torch.cuda.get_device_properties(0)
        info["cuda"] = {
            "name": torch.cuda.get_device_name(0),
            "capability": ".".join(map(str, torch.cuda.get_device_capability(0))),
            "memory_gib": props.total_memory / 2**30,
            "multiprocessors": props.multi_processor_count,
            "driver": nvidia_driver(),
            "cuda_runtime": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version(),
            "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
        }
    return info


def table(result: dict[str, Any]) -> str:
    sizes = sorted({b["batch_size"] for r in result["runs"] for b in r["batches"]})
    head = ["device", "dtype", "check", "first answer s", "p50/p95/p99 ms", *[f"b={n} t/s" for n in sizes], "peak MiB"]
    rows = [head]
    for r in result["runs"]:
        c, lat = r["check"], r["latency_ms"]
        by_size = {b["batch_size"]: b["texts_per_second"] for b in r["batches"]}
        rows.append(
            [
                r["device"],
                r["dtype"],
                "error" if c is None else f"{'ok' if c['passed'] else 'FAIL'} {c['max_abs_diff']:.0e}",
                f"{r['time_to_first_answer_seconds']:.2f}",
                f"{lat['p50']:.2f}/{lat['p95']:.2f}/{lat['p99']:.2f}" if lat else "-",
                *[f"{by_size[n]:,.0f}" if n in by_size else "-" for n in sizes],
                f"{r['max_memory_allocated_mib']:.0f}" if r["max_memory_allocated_mib"] is not None else "-",
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    return "\n".join("  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)) for row in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, required=True, help="folder from pipelines/packaging/gpu_export.py")
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    parser.add_argument("--quick", action="store_true", help=f"a short run: batches {QUICK_BATCH_SIZES}, few repeats")
    parser.add_argument("--devices", default="", help="comma-separated subset of cpu,cuda (default: all present)")
    parser.add_argument(
        "--cpu-threads",
        type=int,
        default=1,
        help="PyTorch CPU threads (default 1: one per worker, as the model servers run; 0: every core)",
    )
    parser.add_argument("--cpu-dtypes", default="fp32", help="precisions on the CPU (fp32 keeps the run short)")
    parser.add_argument("--cuda-dtypes", default="fp32,fp16,bf16", help="precisions on the GPU")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the lent machine has no network: never ask the Hub
    settings = QUICK if args.quick else FULL

    t0 = time.perf_counter()
    import torch
    import transformers

    import_seconds = time.perf_counter() - t0
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()  # a bar per load would bury the figures in the reply's tail
    # One thread by default: the servers run one single-threaded worker per vCPU and the cost model scales per vCPU;
    # on a shared machine, threads beyond the free cores stall each other (here, 2 cores under load: one text took
    # 60-470 ms on 2 threads, 12 ms on 1).
    torch.set_num_threads(args.cpu_threads or os.cpu_count() or 1)
    present = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]
    devices = [d for d in (args.devices.split(",") if args.devices else present) if d]
    missing = [d for d in devices if d not in present]
    if missing:
        print(f"asked for {missing} but this machine has only {present}", file=sys.stderr)
        return 2
    reference = json.loads((args.model_dir / REFERENCE_FILE).read_text())
    # The GPU first: if a lease runs out during the (slower) CPU runs, the GPU figures are already written.
    order = sorted(devices, key=lambda d: d != "cuda")
    plan = [(d, t) for d in order for t in (args.cpu_dtypes if d == "cpu" else args.cuda_dtypes).split(",") if t]
    unknown = sorted({t for _, t in plan} - set(TOLERANCE))
    if unknown:
        print(f"unknown precision(s) {unknown}: choose from {sorted(TOLERANCE)}", file=sys.stderr)
        return 2
    progress(f"devices {devices}; torch {torch.__version__}; {len(reference['texts'])} reference texts")
    result: dict[str, Any] = {
        "schema": SCHEMA,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "model": reference["model"],
        "inputs": {
            name: sha256(args.model_dir / name) for name in (WEIGHTS_FILE, HEAD_FILE, TOKENIZER_FILE, REFERENCE_FILE)
        },
        "environment": environment(devices),
        "startup": {"import_seconds": import_seconds} | warm_start(args.model_dir, devices),
        "settings": asdict(settings) | {"quick": args.quick, "cpu_threads": torch.get_num_threads()},
        "method": (
            "end to end = tokenise on the host, copy in, encoder + mean pooling + L2 norm + head, copy the "
            "probabilities back; model alone = the same on pre-tokenised batches already on the device (CUDA events "
            "on cuda); warm-up calls first, torch.cuda.synchronize() before each host clock read, median of the "
            "timed calls; validation texts cycled"
        ),
        "runs": [],
        "complete": False,
        "passed": False,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for device, dtype in plan:
        try:
            run = measure(args.model_dir, device, dtype, reference, settings)
        except Exception as exc:  # one precision failing (an unsupported kernel, say) must not lose the others
            run = Run(device, dtype, error=f"{type(exc).__name__}: {exc}")
            progress(f"{device} {dtype}: FAILED with {run.error}")
        result["runs"].append(asdict(run))
        # Written after each run: a lease that ends early still returns what was measured.
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    result["complete"] = True
    result["passed"] = all(r["check"] is not None and r["check"]["passed"] and not r["error"] for r in result["runs"])
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(table(result))
    print(f"wrote {args.out}; correctness {'passed' if result['passed'] else 'FAILED'}")
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
