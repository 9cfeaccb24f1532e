"""`mlp cost report`: cost per 1,000 inferences on CPU and GPU, the break-even rate, scale-to-zero, monitoring.

Everything priced comes from policy.yaml (instances, GPU throughput estimates with their sources); the CPU
throughput is measured on this machine (pipelines/cost/measure.py) and scaled to the cluster's CPU instance. A GPU
row uses a measurement instead of its estimate when the GPU benchmark (pipelines/bench/gpu_bench.py) has run on that
instance's GPU and its file is in docs/measurements/ (`gpu-bench-*.json`; the newest by date wins).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core import cost as m
from core.policy import REPO_ROOT, Policy
from core.units import cpu_cores, memory_gib
from modules.cluster_services import ALERTMANAGER_REQUESTS
from pipelines.cost import measure
from pipelines.cost.measure import QUEUEING_FACTOR, CpuThroughput

GPU_LABEL = "estimate until measured on a GPU"
MEASURED_LABEL = "measured"
MEASUREMENTS_DIR = REPO_ROOT / "docs" / "measurements"
MEASUREMENT_GLOB = "gpu-bench-*.json"
SERVED_VARIANTS = ("int8", "fp32")  # cheapest first: the default variant to price is the first one packaged
HELDOUT_TEXTS = 500

# What the monitoring stack reserves in the cluster (requests of the kube-prometheus-stack components and the
# DCGM exporter as the platform configures them), priced at the CPU instance's per-vCPU / per-GiB rate.
MONITORING_REQUESTS: tuple[tuple[str, str, str, int], ...] = (
    # component, cpu request, memory request, replicas (per node for DaemonSets: see nodes below)
    ("prometheus", "500m", "2Gi", 1),
    ("alertmanager", ALERTMANAGER_REQUESTS["cpu"], ALERTMANAGER_REQUESTS["memory"], 1),  # modules/alerting.py
    ("grafana", "100m", "256Mi", 1),
    ("kube-state-metrics", "50m", "128Mi", 1),
    ("prometheus-operator", "100m", "128Mi", 1),
)
DAEMONSETS: tuple[tuple[str, str, str], ...] = (("node-exporter", "50m", "64Mi"),)
GPU_DAEMONSETS: tuple[tuple[str, str, str], ...] = (("dcgm-exporter", "100m", "512Mi"),)
PROMETHEUS_VOLUME_GIB = 50


class NoPackagedModel(RuntimeError):
    """Nothing to measure: the message says which folder was searched and how to fill it."""


@dataclass(frozen=True)
class CostRun:
    result: dict[str, Any]
    json_path: Path
    markdown_path: Path


@dataclass(frozen=True)
class ScenarioInputs:
    """Assumptions of the scale-to-zero scenario (printed with the result)."""

    busy_hours_per_day: float = 2.0
    bursts_per_day: float = 12.0
    nodes: int = 3
    gpu_nodes: int = 1


@dataclass(frozen=True)
class GpuMeasurement:
    """A GPU benchmark file's best end-to-end throughput within the latency SLO, priced like the CPU figure: the
    batch size with the most texts/s whose p95 x QUEUEING_FACTOR stays within `slo.latency_p95_ms`."""

    gpu: str  # the device name PyTorch reports, e.g. "NVIDIA A10G", "Tesla T4"
    date: str  # YYYY-MM-DD
    inferences_per_second: float
    dtype: str
    batch_size: int
    p95_ms: float
    source: str  # the measurement file

    @property
    def basis(self) -> str:
        return (
            f"measured on {self.gpu}: PyTorch {self.dtype}, batch {self.batch_size}, p95 {self.p95_ms:.1f} ms "
            f"(x {QUEUEING_FACTOR:g} within the SLO), end to end from texts to probabilities"
        )


def gpu_measurements(folder: Path, slo_p95_ms: float) -> list[GpuMeasurement]:
    """One per benchmark file in `folder` that measured a GPU and passed its correctness check at some precision
    with a batch size inside the SLO. A file that is not a benchmark result is an error, not a silent estimate."""
    found = []
    for path in sorted(folder.resolve().glob(MEASUREMENT_GLOB)):
        try:
            raw = json.loads(path.read_text())
            gpu = raw["environment"].get("cuda", {}).get("name", "")
            fitting = [
                (b["texts_per_second"], run["dtype"], b["batch_size"], b["p95_ms"])
                for run in raw["runs"]
                if run["device"] == "cuda" and run["check"] and run["check"]["passed"] and not run["error"]
                for b in run["batches"]
                if b["p95_ms"] * QUEUEING_FACTOR <= slo_p95_ms
            ]
            date = str(raw["date"])[:10]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}: not a GPU benchmark result (pipelines/bench/gpu_bench.py): {exc}") from exc
        if gpu and fitting:
            ips, dtype, batch, p95 = max(fitting)
            source = str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)
            found.append(GpuMeasurement(gpu, date, float(ips), dtype, int(batch), float(p95), source))
    return found


def same_gpu(instance_gpu: str | None, measured: str) -> bool:
    """Whether a priced instance's GPU ("1x NVIDIA T4 16 GB") is the measured device ("Tesla T4",
    "NVIDIA A100-SXM4-80GB"): its model name, the word after NVIDIA, is a whole word of the device name (so A10
    never matches A100)."""
    words = (instance_gpu or "").split()
    model = words[words.index("NVIDIA") + 1].upper() if "NVIDIA" in words[:-1] else ""
    return bool(model) and model in re.split(r"[^A-Z0-9]+", measured.upper())


def build(
    p: Policy,
    cpu: CpuThroughput,
    cold_start_seconds: float,
    inputs: ScenarioInputs,
    gpu_measured: list[GpuMeasurement] | None = None,
) -> dict[str, Any]:
    prices = p.prices
    cpu_instance = prices.instances[prices.cpu_instance]
    cpu_ips = m.instance_throughput(cpu.inferences_per_second, cpu.vcpus, cpu_instance)
    cpu_option = m.Option(prices.cpu_instance, cpu_instance.usd_per_hour, cpu_ips)
    measured = gpu_measured or []
    gpus = []
    for name, est in prices.gpu_throughput.items():
        instance = prices.instances.get(name)
        if instance is None:
            raise ValueError(f"policy prices.gpu_throughput.{name}: no price in prices.instances; add it")
        mine = [g for g in measured if same_gpu(instance.gpu, g.gpu)]
        newest = max(mine, key=lambda g: g.date) if mine else None
        ips = newest.inferences_per_second if newest else est.inferences_per_second
        option = m.Option(name, instance.usd_per_hour, ips)
        break_even = m.break_even_rate(cpu_option, option)
        row = {
            "instance": name,
            "gpu": instance.gpu,
            "usd_per_hour": instance.usd_per_hour,
            "inferences_per_second": ips,
            "usd_per_1k": option.usd_per_1k,
            "break_even_inferences_per_second": break_even,
            # The throughput this GPU would need to match CPU's cost per inference.
            "needed_inferences_per_second_to_match_cpu": instance.usd_per_hour / (cpu_option.usd_per_1k / 1000 * 3600),
            "status": GPU_LABEL,
            "basis": est.basis,
            "source": est.source,
            "as_of": est.as_of,
        }
        if newest:
            row |= {
                "status": MEASURED_LABEL,
                "basis": newest.basis,
                "source": newest.source,
                "as_of": newest.date,
                "estimate_inferences_per_second": est.inferences_per_second,
            }
        gpus.append(row)
    replica = m.replica_usd_per_hour(p)
    s2z = scale_to_zero_scenario(p, inputs, cold_start_seconds)
    return {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "region": prices.region,
        "model": p.release.default_model,
        "cpu": {
            "instance": prices.cpu_instance,
            "vcpu": cpu_instance.vcpu,
            "usd_per_hour": cpu_instance.usd_per_hour,
            "price_source": f"{cpu_instance.source} ({cpu_instance.as_of})",
            "measured": cpu.to_dict(),
            "inferences_per_second_per_instance": cpu_ips,
            "usd_per_1k": cpu_option.usd_per_1k,
            "slo_p95_ms": p.slo.latency_p95_ms,
        },
        "gpu": gpus,
        # Measured on a GPU that no priced instance carries (a lent H200, say): shown, not priced.
        "gpu_measured_unpriced": [
            asdict(g)
            for g in measured
            if not any(same_gpu(prices.instances[name].gpu, g.gpu) for name in prices.gpu_throughput)
        ],
        "replica": {
            "usd_per_hour": replica,
            "cpu_request": p.serving.cpu_request,
            "memory_request": p.serving.memory_request,
            "share_of_instance": m.replica_share(cpu_instance, p.serving.cpu_request, p.serving.memory_request),
        },
        "catalogue": catalogue_costs(p, inputs, cold_start_seconds),
        "scale_to_zero": {
            "models": [model.name for model in p.models if not model.critical],
            "assumptions": asdict(inputs)
            | {
                "idle_seconds": p.scaling.scale_to_zero_idle_seconds,
                "min_replicas_always_on": p.scaling.min_replicas,
            },
            **asdict(s2z),
            "cold_start_alert_seconds": p.scaling.scale_from_zero_alert_seconds,
        },
        "monitoring": monitoring_cost(p, inputs),
    }


def scale_to_zero_scenario(p: Policy, inputs: ScenarioInputs, cold_start_seconds: float) -> m.ScaleToZero:
    """Always on at `scaling.min_replicas` against scaled to zero, for the replica `p` prices."""
    return m.scale_to_zero(
        m.replica_usd_per_hour(p),
        p.scaling.min_replicas,
        inputs.busy_hours_per_day,
        inputs.bursts_per_day,
        p.scaling.scale_to_zero_idle_seconds,
        cold_start_seconds,
        p.prices.monthly_hours,
    )


def catalogue_costs(p: Policy, inputs: ScenarioInputs, cold_start_seconds: float) -> list[dict[str, Any]]:
    """What each catalogue model costs a month before it serves anything: a critical one keeps
    `scaling.min_replicas` up; a non-critical one is up only while busy (the scale-to-zero scenario). Each model's
    own resources and prices (catalogue overrides) decide its replica price. Cost per 1,000 inferences needs a
    throughput measured for that model: the report measures the default model's."""
    rows = []
    for model in p.models:
        mp = p.for_model(model.name)
        replica = m.replica_usd_per_hour(mp)
        s2z = scale_to_zero_scenario(mp, inputs, cold_start_seconds)
        monthly = s2z.always_on_usd_per_month if model.critical else s2z.scale_to_zero_usd_per_month
        rows.append(
            {
                "model": model.name,
                "task": model.task,
                "criticality": model.criticality,
                "cpu_request": mp.serving.cpu_request,
                "memory_request": mp.serving.memory_request,
                "replica_usd_per_hour": replica,
                "floor_replicas": mp.scaling.min_replicas if model.critical else 0,
                "usd_per_month_before_traffic": monthly,
                "throughput_measured": model.name == p.release.default_model,
            }
        )
    return rows


def generation_costs(p: Policy, reports: Path) -> list[dict[str, Any]]:
    """Each `generate` model priced from its newest gate report (`mlp model gate-generator` measures TTFT and tokens/s)
    at its own replica price: per 1,000 requests of `generation.default_new_tokens` tokens and per million generated
    tokens. A model without a gate report is listed without a price, saying which command measures it."""
    rows: list[dict[str, Any]] = []
    for model in (x for x in p.models if x.task == "generate"):
        mp = p.for_model(model.name)
        found = sorted(reports.glob(f"gate-{model.name}-*.json"), key=lambda f: f.stat().st_mtime)
        row: dict[str, Any] = {"model": model.name, "replica_usd_per_hour": m.replica_usd_per_hour(mp)}
        if not found:
            rows.append({**row, "measured": None, "to_measure": f"mlp model gate-generator --model {model.name}"})
            continue
        measures = json.loads(found[-1].read_text())["measures"]
        cost = m.generation_costs(
            row["replica_usd_per_hour"],
            measures["ttft_p50_ms"] / 1000,
            measures["tokens_per_second"],
            mp.generation.default_new_tokens,
        )
        measured = {k: measures[k] for k in ("ttft_p50_ms", "tokens_per_second", "choice_accuracy")}
        rows.append({**row, "measured": {**measured, "report": found[-1].name}, **asdict(cost)})
    return rows


def monitoring_cost(p: Policy, inputs: ScenarioInputs) -> dict[str, Any]:
    instance = p.prices.instances[p.prices.cpu_instance]
    per_vcpu_h = instance.usd_per_hour / instance.vcpu
    per_gib_h = instance.usd_per_hour / instance.memory_gib
    rows = [(c, cpu, mem, n) for c, cpu, mem, n in MONITORING_REQUESTS]
    rows += [(c, cpu, mem, inputs.nodes) for c, cpu, mem in DAEMONSETS]
    rows += [(c, cpu, mem, inputs.gpu_nodes) for c, cpu, mem in GPU_DAEMONSETS]
    items = []
    for component, cpu, mem, n in rows:
        # Priced like the scheduler packs: the binding resource of the request decides the share.
        hourly = n * max(cpu_cores(cpu) * per_vcpu_h, memory_gib(mem) * per_gib_h)
        items.append(
            {
                "component": component,
                "cpu": cpu,
                "memory": mem,
                "replicas": n,
                "usd_per_month": hourly * p.prices.monthly_hours,
            }
        )
    volume = PROMETHEUS_VOLUME_GIB * p.prices.other.get("ebs_gp3_per_gb_month", 0.0)
    items.append(
        {
            "component": f"prometheus volume ({PROMETHEUS_VOLUME_GIB} GiB gp3)",
            "cpu": "",
            "memory": "",
            "replicas": 1,
            "usd_per_month": volume,
        }
    )
    return {"items": items, "usd_per_month": sum(i["usd_per_month"] for i in items)}


def _generation_markdown(rows: list[dict[str, Any]]) -> list[str]:
    if not rows:
        return []
    lines = [
        "",
        "## Generated text (generate models)",
        "",
        "One request decodes at a time per replica: a request costs its duration (time to first token, then the "
        "rest at the decode speed) at the replica's price. Measured by the model's gate on this machine.",
        "",
        "| model | replica $/h | TTFT p50 | tokens/s | $ per 1,000 requests | $ per 1M tokens | measured |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        if row["measured"] is None:
            lines.append(f"| {row['model']} | {row['replica_usd_per_hour']:.4f} | | | | | run `{row['to_measure']}` |")
            continue
        ms = row["measured"]
        lines.append(
            f"| {row['model']} | {row['replica_usd_per_hour']:.4f} | {ms['ttft_p50_ms']:.0f} ms | "
            f"{ms['tokens_per_second']:.1f} | {row['usd_per_1k_requests']:.4f} "
            f"({row['tokens_per_request']} tokens) | {row['usd_per_million_tokens']:.2f} | {ms['report']} |"
        )
    return lines


def markdown(r: dict[str, Any]) -> str:
    cpu, meas = r["cpu"], r["cpu"]["measured"]
    lines = [
        f"# Cost per 1,000 inferences — {r['model']}",
        "",
        f"Generated {r['generated_at']} by `mlp cost report`; prices: {r['region']} on-demand (policy.yaml).",
        "",
        "## CPU serving (measured)",
        "",
        f"- Measured: **{meas['inferences_per_second']:.1f} inferences/s on {meas['vcpus']:g} vCPU** "
        f"({meas['variant']}, batch {meas['batch_size']}, p95 {meas['p95_ms']:.1f} ms, SLO p95 "
        f"{cpu['slo_p95_ms']:g} ms) on {meas['cpu_model']}; source: {meas['source']}.",
        f"- Scaled to {cpu['instance']} ({cpu['vcpu']} vCPU): {cpu['inferences_per_second_per_instance']:.0f} "
        f"inferences/s at ${cpu['usd_per_hour']}/h ({cpu['price_source']}).",
        f"- **CPU: ${cpu['usd_per_1k']:.6f} per 1,000 inferences** (at full utilisation).",
        "",
    ]
    if meas["timings"]:
        lines += ["| batch | p50 ms | p95 ms | texts/s (wall) | texts per CPU-second |", "|---:|---:|---:|---:|---:|"]
        lines += [
            f"| {t['batch_size']} | {t['p50_ms']:.1f} | {t['p95_ms']:.1f} | {t['texts_per_second']:.1f} | "
            f"{t['texts_per_cpu_second']:.1f} |"
            for t in meas["timings"]
        ]
        lines.append("")
    lines += [
        "## GPU serving",
        "",
        "| instance | GPU | $/h | inferences/s | status | $ per 1,000 | break-even rate | needed to match CPU |",
        "|---|---|---:|---:|---|---:|---:|---:|",
    ]
    for g in r["gpu"]:
        be = g["break_even_inferences_per_second"]
        be_text = f"{be:,.0f}/s" if be is not None else "never (CPU cheaper per inference)"
        needed = g["needed_inferences_per_second_to_match_cpu"]
        lines.append(
            f"| {g['instance']} | {g['gpu']} | {g['usd_per_hour']} | {g['inferences_per_second']:,.0f} | "
            f"{g['status']} | {g['usd_per_1k']:.6f} | {be_text} | {needed:,.0f}/s |"
        )
    lines.append("")
    for g in r["gpu"]:
        lines.append(f"- {g['instance']} ({g['status']}): {g['basis']}. Source: {g['source']} ({g['as_of']}).")
    for u in r["gpu_measured_unpriced"]:
        lines.append(
            f"- Also measured, on a GPU no priced instance has: {u['gpu']}, {u['inferences_per_second']:,.0f} "
            f"inferences/s ({u['dtype']}, batch {u['batch_size']}, p95 {u['p95_ms']:.1f} ms; {u['source']}, "
            f"{u['date']}); not priced: no instance of policy.yaml prices.gpu_throughput has it."
        )
    rep, s2z = r["replica"], r["scale_to_zero"]
    a = s2z["assumptions"]
    lines += [
        "",
        "## The catalogue (policy.yaml models)",
        "",
        "Monthly cost of each model's pods before any traffic: a critical model keeps its floor of replicas, a "
        "non-critical one scales to zero (the scenario below). Cost per 1,000 inferences above is measured for "
        f"{r['model']}; another model needs its own throughput measurement.",
        "",
        "| model | task | criticality | replica | floor | $/month before traffic |",
        "|---|---|---|---|---:|---:|",
    ]
    for row in r["catalogue"]:
        lines.append(
            f"| {row['model']} | {row['task']} | {row['criticality']} | {row['cpu_request']} CPU, "
            f"{row['memory_request']}: ${row['replica_usd_per_hour']:.4f}/h | {row['floor_replicas']} | "
            f"{row['usd_per_month_before_traffic']:.2f} |"
        )
    lines += _generation_markdown(r.get("generation", []))
    non_critical = ", ".join(s2z["models"]) or "none in the catalogue yet"
    lines += [
        "",
        "## Scale to zero (non-critical models)",
        "",
        f"Non-critical models: {non_critical}. One replica ({rep['cpu_request']} CPU, {rep['memory_request']}"
        f" = {rep['share_of_instance']:.1%} of a {cpu['instance']}) costs ${rep['usd_per_hour']:.4f}/h.",
        "",
        f"- Always on ({a['min_replicas_always_on']} replicas): ${s2z['always_on_usd_per_month']:.2f}/month",
        f"- Scale to zero ({a['busy_hours_per_day']:g} busy h/day, {a['bursts_per_day']:g} bursts/day, "
        f"{a['idle_seconds']} s idle tail): ${s2z['scale_to_zero_usd_per_month']:.2f}/month",
        f"- **Saving: ${s2z['saving_usd_per_month']:.2f}/month per model**; price: the first request of each "
        f"burst waits a cold start ({s2z['cold_start_seconds']:.1f} s model load measured here, plus pod "
        f"scheduling and image pull in the cluster; alert above {s2z['cold_start_alert_seconds']} s).",
        "",
        "## Monitoring stack (cluster)",
        "",
        "| component | CPU | memory | replicas | $/month |",
        "|---|---|---|---:|---:|",
    ]
    for i in r["monitoring"]["items"]:
        lines.append(f"| {i['component']} | {i['cpu']} | {i['memory']} | {i['replicas']} | {i['usd_per_month']:.2f} |")
    lines += ["", f"Total: **${r['monitoring']['usd_per_month']:.2f}/month**.", ""]
    return "\n".join(lines)


def write(r: dict[str, Any], out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    js, md = out_dir / "cost.json", out_dir / "cost.md"
    js.write_text(json.dumps(r, indent=2) + "\n")
    md.write_text(markdown(r))
    return js, md


def measure_cold_start(model_dir: Path, text: str) -> float:
    """Seconds from nothing to the first answer: load the model and classify one text (what a pod does after
    its container starts)."""
    from services.model_runtime.runtimes import load_classifier

    t0 = time.perf_counter()
    load_classifier(model_dir).predict([text])
    return time.perf_counter() - t0


def packaged_model(models: Path, variant: str = "") -> Path:
    """The packaged model to measure: the given variant, else the first of SERVED_VARIANTS that is packaged."""
    names = [variant] if variant else [v for v in SERVED_VARIANTS if (models / v / "model.onnx").exists()]
    if not names or not (models / names[0] / "model.onnx").exists():
        raise NoPackagedModel(
            f"no packaged model in {models} ({', '.join(SERVED_VARIANTS)}): run `mlp model package` first"
        )
    return models / names[0]


def cpu_throughput(
    model_dir: Path, texts: list[str], p: Policy, reports: Path, seconds: float, progress: Callable[[str], None]
) -> CpuThroughput:
    """The serving benchmark's figure when `make bench` left one, else a short in-process measurement."""
    cpu = measure.from_bench_file(reports / "bench-serving.json")
    if cpu is not None:
        progress(f"CPU throughput from {cpu.source}")
        return cpu
    progress(f"measuring {model_dir.name} with ONNX Runtime ({seconds:g} s per batch size)...")
    return measure.measure_runtime(model_dir, texts, p, seconds_per_size=seconds, progress=lambda m: progress("  " + m))


def run(
    p: Policy,
    build_root: Path,
    inputs: ScenarioInputs,
    *,
    variant: str = "",
    seconds: float = 2.0,
    measurements: Path = MEASUREMENTS_DIR,
    progress: Callable[[str], None] = print,
) -> CostRun:
    """`mlp cost report`: measure (or read) CPU throughput, price everything, write build/reports/cost.*"""
    from pipelines.data import load_split

    model_dir = packaged_model(build_root / "models", variant)
    texts = [e.text for e in load_split("heldout")][:HELDOUT_TEXTS]
    reports = build_root / "reports"
    cpu = cpu_throughput(model_dir, texts, p, reports, seconds, progress)
    gpu_measured = gpu_measurements(measurements, p.slo.latency_p95_ms)
    result = build(p, cpu, measure_cold_start(model_dir, texts[0]), inputs, gpu_measured)
    result["generation"] = generation_costs(p, reports)
    js, md = write(result, reports)
    return CostRun(result, js, md)
