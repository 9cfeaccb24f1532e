"""The cluster's images and the model server's pod, measured: image sizes, build time cold and cached, the pod's
time to ready, its latency and memory at 100 requests/s for 30 s (the rendered Deployment run with podman), and the
drift CronJob's pod over shifted traffic (time, memory), and the GPU image on this GPU-less machine (where its
session runs, and whether the server says so).

`--cold` rebuilds every image from its Containerfile (minutes, network to the package index); without it, an image
missing here is built anyway and its time is reported as cold. Needs the local environment for the pod (started if
down) and registers the int8 package (idempotent). Writes `build/reports/bench-images.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

from rich.console import Console
from rich.table import Table

from core import endpoints, env
from core.policy import policy
from infra.containers.images import DRIFT_JOB, IMAGES, MODEL_SERVER, MODEL_SERVER_GPU, BuiltImage, build
from infra.containers.podman import podman
from infra.local.paths import build_dir
from pipelines.bench.serving_bench import VARIANT, ensure_env, registered_version
from pipelines.data import load_shifted
from pipelines.drift.push import forget
from pipelines.rehearsal import drift_job
from pipelines.rehearsal.load import open_loop
from pipelines.rehearsal.model_server import classify, play
from pipelines.rehearsal.pods import down

RATE, SECONDS = 100, 30.0
DRIFT_TEXTS = 150
TEXT = "A moving, beautifully acted film."
console = Console(width=150)


@dataclass
class ImageFigures:
    name: str
    size_mb: float
    build_seconds: float
    cold: bool
    cached_seconds: float


@dataclass
class DriftJobFigures:
    texts: int
    exit_code: int
    seconds: float
    peak_memory_mb: float
    memory_limit: str


@dataclass
class PodFigures:
    version: int
    ready_seconds: float
    startup_budget_seconds: float
    rate: int
    seconds: float
    errors: int
    p50_ms: float
    p99_ms: float
    peak_memory_mb: float
    drift_job: DriftJobFigures


def measure_images(cold: bool) -> list[ImageFigures]:
    out = []
    for spec in IMAGES:
        console.print(f"building {spec.name} ({'cold' if cold else 'cached if unchanged'}) ...")
        first = build(spec, force=cold)
        again = build(spec)
        out.append(ImageFigures(spec.name, first.size_bytes / 1e6, first.seconds, first.built, again.seconds))
    return out


GPU_PROBE = """
import json, logging
class Keep(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []
    def emit(self, record):
        self.messages.append(record.getMessage())
kept = Keep()
logging.getLogger().addHandler(kept)
from services.model_server.loading import load_from_env
m = load_from_env()
print(json.dumps({"provider": m.classifier.provider, "warnings": kept.messages}))
"""


def measure_gpu_image_without_gpu() -> dict[str, object]:
    """The GPU image serving a packaged model on this machine (no GPU): the provider its session came up on and the
    server's warnings, read from the image's own loader."""
    ref = build(MODEL_SERVER_GPU).ref
    model = build_dir() / "models" / VARIANT
    run = ["run", "--rm", "--network", "none", "--read-only", "-v", f"{model}:/models:ro"]
    settings = {env.DEVICE.name: "cuda", env.MODEL_DIR.name: "/models", env.MODEL_VERSION.name: "1"}
    env_args = [a for name, value in settings.items() for a in ("-e", f"{name}={value}")]
    out = podman(*run, *env_args, ref, "python", "-c", GPU_PROBE)
    result: dict[str, object] = json.loads(out.strip().splitlines()[-1])
    return result


def measure_pod() -> PodFigures:
    ensure_env()
    console.print(f"registering the {VARIANT} package (idempotent) ...")
    version = registered_version()
    server = build(MODEL_SERVER)
    console.print(f"podman kube play of v{version}'s rendered Deployment ...")
    run = play(version, server)
    console.print(f"ready in {run.ready_seconds:.1f}s; {RATE} requests/s for {SECONDS:.0f}s ...")
    try:
        load = open_loop(run.url, run.container_id, rate=RATE, seconds=SECONDS, text=TEXT)
        console.print(f"{DRIFT_TEXTS} shifted texts, then the drift CronJob's pod over them ...")
        job = measure_drift_job(version, run.url, server)
    finally:
        down(run.kube_file)
    return PodFigures(
        version=version,
        ready_seconds=run.ready_seconds,
        startup_budget_seconds=run.budget_seconds,
        rate=RATE,
        seconds=load.seconds,
        errors=len(load.errors),
        p50_ms=load.percentile(0.50) * 1000,
        p99_ms=load.percentile(0.99) * 1000,
        peak_memory_mb=load.peak_memory_bytes / 1e6,
        drift_job=job,
    )


def measure_drift_job(version: int, server_url: str, server: BuiltImage) -> DriftJobFigures:
    """Shifted texts through the pod, then the drift CronJob's pod over them (its reference built from scratch,
    as in every cluster run)."""
    since = datetime.now(UTC) - timedelta(seconds=2)
    texts = random.Random(0).sample(load_shifted(), DRIFT_TEXTS)
    for i in range(0, len(texts), 25):
        classify(server_url, texts[i : i + 25])
    time.sleep(policy().serving.inference_log_flush_seconds + 2)
    job = drift_job.run(version, since, server, build(DRIFT_JOB))
    try:
        container = job.rendered["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
        limit = container["resources"]["limits"]["memory"]
        ran = job.exited
        return DriftJobFigures(DRIFT_TEXTS, ran.exit_code, ran.seconds, ran.peak_memory_bytes / 1e6, limit)
    finally:
        down(job.kube_file)
        forget(endpoints.pushgateway_url(), policy().release.default_model, version)


def print_tables(images: list[ImageFigures], pod: PodFigures | None) -> None:
    table = Table(title="Images (podman, the local Debian base)")
    for col in ("image", "size MB", "build s", "kind", "cached s"):
        table.add_column(col, justify="left" if col in ("image", "kind") else "right")
    for i in images:
        kind = "cold" if i.cold else "cached"
        table.add_row(i.name, f"{i.size_mb:.0f}", f"{i.build_seconds:.1f}", kind, f"{i.cached_seconds:.2f}")
    console.print(table)
    if pod is not None:
        table = Table(title=f"Model server pod (int8 v{pod.version}), rendered Deployment, {pod.rate} req/s open loop")
        for col in ("ready s", "budget s", "p50 ms", "p99 ms", "errors", "peak MB"):
            table.add_column(col, justify="right")
        table.add_row(f"{pod.ready_seconds:.1f}", f"{pod.startup_budget_seconds:.0f}", f"{pod.p50_ms:.1f}",
                      f"{pod.p99_ms:.1f}", str(pod.errors), f"{pod.peak_memory_mb:.0f}")  # fmt: skip
        console.print(table)
        j = pod.drift_job
        console.print(
            f"drift job over {j.texts} shifted texts: exit {j.exit_code}, {j.seconds:.0f} s, "
            f"peak {j.peak_memory_mb:.0f} MB of its {j.memory_limit} limit"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cold", action="store_true", help="rebuild every image from scratch")
    parser.add_argument("--no-pod", action="store_true", help="images only")
    args = parser.parse_args(argv)
    console.print(f"load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (other work skews the figures)")
    images = measure_images(args.cold)
    gpu_image = measure_gpu_image_without_gpu()
    pod = None if args.no_pod else measure_pod()
    print_tables(images, pod)
    console.print(f"GPU image without a GPU: session on {gpu_image['provider']}; warnings: {gpu_image['warnings']}")
    report = build_dir() / "reports" / "bench-images.json"
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(
        json.dumps(
            {"images": [asdict(i) for i in images], "gpu_image_without_gpu": gpu_image, "pod": pod and asdict(pod)},
            indent=2,
        )
    )
    console.print(f"written: {report}")


if __name__ == "__main__":
    main()
