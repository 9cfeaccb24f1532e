"""Serving latency per layer under open-loop load: the runtime in process, the model server, the gateway (int8 by
default; `--variant` serves another packaged variant, which `runtime_bench` does for its served columns).

Open loop: request i leaves at `start + i / rate` whatever happened to the ones before, and its latency is
measured from that scheduled time, so a slow server shows up as latency (queueing included) instead of quietly
lowering the offered rate (coordinated omission). Each layer is driven at 10, 25, 50 and 100 requests/s for
about 10 s, one text per request.

Needs the local environment (`mlp env up`; started here if down). Registers the variant's package if needed
(idempotent), starts its model server if it is not live (and stops it again afterwards), and reaches it through
the gateway with the pin header, so no traffic weights change. Prints a table with the targets beside and writes
`build/reports/bench-serving.json` (the cost report reads per-rate p95 and achieved throughput) or `--out`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import ssl
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from core import contracts, endpoints
from core.policy import policy
from infra.local.paths import REPO_ROOT, build_dir

RATES = (10, 25, 50, 100)
SECONDS = 10.0
VARIANT = "int8"
TARGETS = {  # (layer, rate) -> (p50 ms, p99 ms) aims; p95 < SLO everywhere
    ("gateway", 50): (15.0, 60.0),
    ("gateway", 100): (None, 100.0),
}
console = Console(width=150)


@dataclass
class LayerResult:
    layer: str
    rate: int
    sent: int
    ok: int
    errors: int
    seconds: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    throughput_rps: float
    server_cpu_cores: float | None = None  # CPU the model server (all its processes) used during the run


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    k = (len(sorted_values) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


def summarise(layer: str, rate: int, latencies: list[float], errors: int, elapsed: float) -> LayerResult:
    lat = sorted(latencies)
    ms = [x * 1000 for x in lat]
    return LayerResult(
        layer=layer,
        rate=rate,
        sent=len(latencies) + errors,
        ok=len(latencies),
        errors=errors,
        seconds=round(elapsed, 2),
        p50_ms=round(percentile(ms, 0.50), 2),
        p95_ms=round(percentile(ms, 0.95), 2),
        p99_ms=round(percentile(ms, 0.99), 2),
        max_ms=round(ms[-1], 2) if ms else float("nan"),
        throughput_rps=round(len(latencies) / elapsed, 2) if elapsed > 0 else 0.0,
    )


async def open_loop(
    send: Callable[[str], Awaitable[bool]], texts: list[str], rate: int, seconds: float
) -> tuple[list[float], int, float]:
    """Fire `rate * seconds` requests on a fixed schedule; latency counts from each scheduled send time."""
    n = int(rate * seconds)
    latencies: list[float] = []
    errors = 0
    start = time.perf_counter() + 0.05

    async def one(i: int) -> None:
        nonlocal errors
        scheduled = start + i / rate
        await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
        try:
            ok = await send(texts[i % len(texts)])
        except Exception:
            ok = False
        if ok:
            latencies.append(time.perf_counter() - scheduled)
        else:
            errors += 1

    await asyncio.gather(*(one(i) for i in range(n)))
    return latencies, errors, time.perf_counter() - start


def bench_texts(variant: str = VARIANT) -> list[str]:
    try:
        from pipelines.data import load_split

        texts = [e.text for e in load_split("heldout")][:500]
        if texts:
            return texts
    except Exception:  # the data files are optional for the benchmark
        pass
    example = json.loads((build_dir() / "models" / variant / "input_example.json").read_text())
    return list(example["texts"])


# ---------------------------------------------------------------- layers


def run_raw(texts: list[str], rates: tuple[int, ...], seconds: float, variant: str = VARIANT) -> list[LayerResult]:
    """The variant's runtime in this process, threads as served; two threads share the model (two cores)."""
    from services.model_runtime.runtimes import load_classifier

    s = policy().serving
    model = load_classifier(
        build_dir() / "models" / variant, threads=s.ort_intra_op_threads, inter_op_threads=s.ort_inter_op_threads
    )
    for t in texts[:50]:
        model.predict([t])
    pool = ThreadPoolExecutor(max_workers=2)

    async def send(text: str) -> bool:
        await asyncio.get_running_loop().run_in_executor(pool, model.predict, [text])
        return True

    out = []
    for rate in rates:
        lat, err, el = asyncio.run(open_loop(send, texts, rate, seconds))
        out.append(summarise(model.runtime, rate, lat, err, el))
        _progress(out[-1])
    pool.shutdown()
    return out


def server_cpu_seconds(port: int) -> float:
    """CPU seconds so far of the `bentoml serve --port PORT` process and its workers."""
    import psutil

    total = 0.0
    for proc in psutil.process_iter(["cmdline"]):
        cmd = " ".join(proc.info["cmdline"] or [])
        if "bentoml" in cmd and " serve " in cmd and f"--port {port}" in cmd:
            for p in (proc, *proc.children(recursive=True)):
                try:
                    times = p.cpu_times()
                    total += times.user + times.system
                except psutil.Error:
                    pass
    return total


def run_http(
    layer: str,
    url: str,
    headers: dict[str, str],
    texts: list[str],
    rates: tuple[int, ...],
    seconds: float,
    port: int,
    ssl_context: ssl.SSLContext | None = None,
) -> list[LayerResult]:
    out = []
    for rate in rates:

        async def go(rate: int = rate) -> tuple[list[float], int, float]:
            # aiohttp, not httpx: the load generator shares the 2 cores with the server, and httpx's per-request
            # CPU made the client the bottleneck at 100 req/s (the server sat at 0.4 cores).
            import aiohttp

            connector = aiohttp.TCPConnector(limit=256, ssl=ssl_context or True)
            timeout = aiohttp.ClientTimeout(total=30)
            async with aiohttp.ClientSession(headers=headers, connector=connector, timeout=timeout) as session:
                for t in texts[:20]:  # warm connections
                    async with session.post(url, json={"texts": [t]}) as resp:
                        await resp.read()

                async def send(text: str) -> bool:
                    async with session.post(url, json={"texts": [text]}) as resp:
                        await resp.read()
                        return resp.status == 200

                return await open_loop(send, texts, rate, seconds)

        cpu_before = server_cpu_seconds(port)
        lat, err, el = asyncio.run(go())
        out.append(summarise(layer, rate, lat, err, el))
        out[-1].server_cpu_cores = round((server_cpu_seconds(port) - cpu_before) / el, 3)  # warm-up included
        _progress(out[-1])
    return out


def _progress(r: LayerResult) -> None:
    console.print(
        f"  {r.layer:>12} @ {r.rate:>3} req/s: p50 {r.p50_ms:7.1f} ms  p95 {r.p95_ms:7.1f} ms  "
        f"p99 {r.p99_ms:7.1f} ms  {r.throughput_rps:6.1f} req/s  errors {r.errors}"
        + (f"  server CPU {r.server_cpu_cores:.2f} cores" if r.server_cpu_cores is not None else "")
    )


# ---------------------------------------------------------------- environment


def ensure_env() -> None:
    from infra.local.serving import gateway_program
    from infra.local.supervisor import check_health

    if not check_health(gateway_program())[0]:
        console.print("gateway not answering: bringing the local environment up (`mlp env up`) ...")
        subprocess.run([sys.executable, "-m", "pipelines.cli", "env", "up"], cwd=REPO_ROOT, check=True)


def registered_version(variant: str = VARIANT) -> int:
    from core import contracts
    from infra.local.registry_auth import use_identity
    from pipelines.registry.register import register

    # It registers and starts servers in this process: the release bot's identity (docs/security-registry.md).
    use_identity(contracts.REGISTRY_RELEASE_BOT)
    return register(build_dir() / "models" / variant, alias=None, progress=lambda _m: None).version


def print_table(results: list[LayerResult], variant: str = VARIANT) -> None:
    slo = policy().slo.latency_p95_ms
    table = Table(title=f"Serving latency, {variant}, one text per request, open loop (p95 SLO < {slo:g} ms)")
    for col in ("layer", "rate", "p50 ms", "p95 ms", "p99 ms", "req/s", "errors", "target"):
        table.add_column(col, justify="right" if col not in ("layer", "target") else "left")
    for r in results:
        aims = [f"p95<{slo:g}" + (" ok" if r.p95_ms < slo else " MISS")]
        target = TARGETS.get((r.layer, r.rate))
        if target:
            p50, p99 = target
            if p50 is not None:
                aims.append(f"p50≤{p50:g}" + (" ok" if r.p50_ms <= p50 else " miss"))
            if p99 is not None:
                aims.append(f"p99≤{p99:g}" + (" ok" if r.p99_ms <= p99 else " miss"))
        table.add_row(r.layer, str(r.rate), f"{r.p50_ms:.1f}", f"{r.p95_ms:.1f}", f"{r.p99_ms:.1f}",
                      f"{r.throughput_rps:.1f}", str(r.errors), ", ".join(aims))  # fmt: skip
    console.print(table)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default=",".join(map(str, RATES)), help="comma-separated requests/s")
    parser.add_argument("--seconds", type=float, default=SECONDS, help="seconds per rate")
    parser.add_argument("--layers", default="in-process,server,gateway")
    parser.add_argument("--variant", default=VARIANT, help="the packaged variant to serve (build/models/<variant>)")
    parser.add_argument("--out", type=Path, help="the report file (default build/reports/bench-serving.json)")
    args = parser.parse_args(argv)
    rates = tuple(int(r) for r in args.rates.split(","))
    layers = args.layers.split(",")
    variant = args.variant
    if not (build_dir() / "models" / variant / "model_config.json").exists():
        console.print(f"[red]{variant} is not packaged[/red]: run `mlp model package --variant {variant}` first")
        raise SystemExit(2)
    texts = bench_texts(variant)
    load_before = os.getloadavg()
    console.print(f"load average now {load_before[0]:.1f} on {os.cpu_count()} CPUs (other work skews the figures)")
    results: list[LayerResult] = []
    started_here = False
    version = None
    if "in-process" in layers:
        console.print(f"[bold]{variant}'s runtime in this process[/bold]")
        results += run_raw(texts, rates, args.seconds, variant)
    if {"server", "gateway"} & set(layers):
        from infra.local import tls
        from infra.local.secrets import api_key
        from infra.local.serving import current_weights, live_model_servers, start_model_server, stop_model_server

        ensure_env()
        version = registered_version(variant)
        server = next((s for s in live_model_servers() if s.version == version), None)
        if server is None:
            console.print(f"starting a model server for {variant} (v{version}) ...")
            server = start_model_server(version, wait=True)
            started_here = True
        try:
            if "server" in layers:
                console.print(f"[bold]model server v{version} directly ({server.url})[/bold]")
                results += run_http("server", f"{server.url}/classify", {}, texts, rates, args.seconds, server.port)
            if "gateway" in layers:
                console.print(f"[bold]through the gateway, pinned to v{version}[/bold]")
                headers = {contracts.API_KEY_HEADER: api_key("loadtest"), contracts.PIN_HEADER: str(version)}
                url = f"{endpoints.gateway_url()}/classify"
                context = tls.client_context()  # the gateway's TLS is part of what this layer measures
                results += run_http("gateway", url, headers, texts, rates, args.seconds, server.port, context)
        finally:
            if started_here and current_weights().get(version, 0) == 0:
                stop_model_server(version)
    print_table(results, variant)
    write_report(results, version, load_before, variant, args.out)


def at_slo(results: list[LayerResult], variant: str = VARIANT) -> dict[str, Any]:
    """What the cost report prices: the highest gateway rate within the p95 SLO without errors, per server vCPU."""
    slo = policy().slo.latency_p95_ms
    fitting = [r for r in results if r.layer == "gateway" and r.errors == 0 and r.p95_ms < slo and r.server_cpu_cores]
    if not fitting:
        return {}
    best = max(fitting, key=lambda r: r.throughput_rps)
    from pipelines.cost.measure import cpu_model

    return {
        "inferences_per_second": best.throughput_rps,
        "vcpus": max(best.server_cpu_cores or 0.0, 0.05),
        "p95_ms": best.p95_ms,
        "batch_size": 1,
        "variant": variant,
        "cpu_model": cpu_model(),
        "at_rate": best.rate,
    }


def write_report(
    results: list[LayerResult],
    version: int | None,
    load_before: tuple[float, ...],
    variant: str = VARIANT,
    path: Path | None = None,
) -> Path:
    s = policy().serving
    report = {
        "variant": variant,
        "model_version": version,
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            # Other work on the machine skews every figure: the 1-minute load average before and after.
            "load_average_before": load_before,
            "load_average_after": os.getloadavg(),
        },
        "settings": {
            "ort_intra_op_threads": s.ort_intra_op_threads,
            "ort_inter_op_threads": s.ort_inter_op_threads,
            "workers": s.workers,
            "batching_max_batch_size": s.batching_max_batch_size,
            "batching_max_latency_ms": s.batching_max_latency_ms,
            "texts_per_request": 1,
        },
        "method": "open loop; latency from the scheduled send time; one text per request",
        "slo_p95_ms": policy().slo.latency_p95_ms,
        "results": [asdict(r) for r in results],
        # Per layer and rate, the two figures the cost report reads.
        "by_layer": {
            layer: {
                str(r.rate): {"p95_ms": r.p95_ms, "throughput_rps": r.throughput_rps}
                for r in results
                if r.layer == layer
            }
            for layer in dict.fromkeys(r.layer for r in results)
        },
        "median_of_p95_ms": statistics.median([r.p95_ms for r in results]) if results else None,
        # Read by pipelines/cost/measure.py (from_bench_file): sustained inferences/s within the SLO per vCPUs.
        **at_slo(results, variant),
    }
    path = path or build_dir() / "reports" / "bench-serving.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    console.print(f"wrote {path}")
    return path


if __name__ == "__main__":
    main()
