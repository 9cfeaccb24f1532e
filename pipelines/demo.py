"""`make demo`: the whole lifecycle on the local environment, as a user would run it.

Each step is a real `mlp` command against real servers; the demo stops at the first unexpected result.
"""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass

from core.policy import REPO_ROOT, policy
from infra.local import endpoints
from infra.local.paths import build_dir, logs_dir


@dataclass(frozen=True)
class Step:
    title: str
    args: list[str]
    expect_rc: int = 0


def run(step: Step, index: int, total: int) -> str:
    print(f"\n\033[1m[{index}/{total}] {step.title}\033[0m\n$ mlp {' '.join(step.args)}", flush=True)
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *step.args], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True
    )
    print(proc.stdout, end="", flush=True)
    took = time.monotonic() - t0
    if proc.returncode != step.expect_rc:
        print(
            f"\n\033[31mdemo stopped: `mlp {' '.join(step.args)}` exited {proc.returncode}, "
            f"expected {step.expect_rc}.\033[0m Logs: {logs_dir()}",
            flush=True,
        )
        sys.exit(1)
    note = " (a failure was the expected outcome)" if step.expect_rc else ""
    print(f"\033[32m-> done in {took:.1f}s{note}\033[0m", flush=True)
    return proc.stdout


def version_of(output: str) -> str:
    """`mlp model register` prints the version number on its last stdout line."""
    return output.strip().splitlines()[-1].strip()


def main() -> None:
    p = policy()
    started = time.monotonic()
    steps_total = 17
    i = 0

    def step(title: str, *args: str, expect_rc: int = 0) -> str:
        nonlocal i
        i += 1
        return run(Step(title, list(args), expect_rc), i, steps_total)

    step("Bring up the local environment (PostgreSQL, S3, MLflow, gateway, Prometheus, webhook receiver)", "env", "up")
    step("Package four model variants to ONNX (PyTorch runs only here; cached after the first run)",
         "model", "package", "--variant", "all")  # fmt: skip

    def register(variant: str, why: str, alias: str | None = None) -> str:
        extra = ["--alias", alias] if alias else []
        title = f"Register {variant} ({why})" + (f" as {alias}" if alias else "")
        return version_of(step(title, "model", "register", "--variant", variant, *extra))

    fp32 = register("fp32", "the current model", alias="champion")
    int8 = register("int8", "quantised: as accurate, faster, 4x smaller", alias="challenger")
    weak = register("weak", "head trained on 3 examples per class: really worse")
    heavy = register("heavy", "same answers, every request padded to 256 tokens: really slower")
    step(f"Gate int8 (v{int8}) against the champion and the baseline: passes", "model", "gate", int8)
    step(f"Gate weak (v{weak}): really worse, so the gate rejects it", "model", "gate", weak, expect_rc=1)
    step(f"Serve the champion (v{fp32}) behind the gateway", "serve", "start", fp32)
    # A re-run finds the previous run's winner still serving: the releases below start from the champion again.
    step(f"All traffic to the champion (v{fp32}): the releases below start from it", "serve", "weights", f"{fp32}=100")
    step("A sample request through the gateway (API key, weighted split, version that answered)",
         "serve", "request", "A warm, funny and beautifully acted film that earns every minute")  # fmt: skip
    step(f"Release int8 (v{int8}): 10% canary, analysis against stable, promotion",
         "release", "start", "--version", int8, "--drive-traffic", "25")  # fmt: skip
    step(f"Release heavy (v{heavy}): slower for a real reason, rolled back automatically",
         "release", "start", "--version", heavy, "--drive-traffic", "25", expect_rc=1)  # fmt: skip
    step("Drift check over shifted traffic: raises the drift alert", "drift", "demo")
    step("Cost per 1,000 inferences: CPU measured here vs GPU estimate, scale-to-zero saving", "cost", "report")
    step("Render the model-serving dashboard from the local Prometheus", "obs", "render-dashboard")
    step("Registered versions and their release decisions", "model", "list")

    print(
        f"\n\033[1mDemo finished in {time.monotonic() - started:.0f}s.\033[0m Where to look:\n"
        f"  MLflow UI         {endpoints.mlflow_url()}  (experiment and model '{p.release.model_name}')\n"
        f"  Gateway           {endpoints.gateway_url()}/classify  (API keys in .state/secrets/api_key_*)\n"
        f"  Prometheus        {endpoints.prometheus_url()}  (alerts: /alerts)\n"
        f"  Reports           {build_dir() / 'reports'}  (gate, release, drift, cost)\n"
        f"  Dashboard         docs/img/dashboard.png\n"
        f"  Logs              {logs_dir()}\n"
        f"  Stop everything   make down"
    )


if __name__ == "__main__":
    main()
