"""Session fixtures for integration tests: the real local servers, and registered model versions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from core import contracts, env
from core.policy import policy
from pipelines.packaging.variants import REGISTERED

REPO_ROOT = Path(__file__).resolve().parents[2]
MLP = [sys.executable, "-m", "pipelines.cli"]
ALIASES = {"fp32": "champion", "int8": "challenger"}  # every other registered variant starts without an alias
VARIANT_ALIASES = {variant: ALIASES.get(variant) for variant in REGISTERED}


CREDENTIAL_VARS = (contracts.MLFLOW_USERNAME_VAR, contracts.MLFLOW_PASSWORD_VAR)


def cli_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The test environment without this process's registry credential (the CLI picks the identity each command
    needs), plus `extra` (a test acting as another user passes its credential here)."""
    base = {k: v for k, v in os.environ.items() if k not in CREDENTIAL_VARS}
    return {**base, **(extra or {})}


def mlp(
    *args: str, check: bool = True, timeout: float = 600, extra_env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the CLI as a user would, in the test environment; on failure show its output."""
    result = subprocess.run(
        [*MLP, *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout, env=cli_env(extra_env)
    )
    if check and result.returncode != 0:
        pytest.fail(f"mlp {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture(scope="session")
def local_env() -> Iterator[None]:
    """Every local server up (idempotent). Torn down at the end unless MLP_KEEP_ENV=1.

    The test process itself then acts as the release bot (it registers versions and moves aliases in-process, as
    the model owner's tooling does); CLI runs through `mlp()` choose their own identity."""
    from infra.local import webhook
    from infra.local.registry_auth import use_identity
    from services.webhook import actions

    mlp("env", "up")
    use_identity(contracts.REGISTRY_RELEASE_BOT)
    # Other tests raise real drift alerts on registered versions (the rehearsal's drift job, for one): only the
    # drift-loop test (test_retrain.py) lets an alert start a retraining and a release.
    actions.pause(webhook.state_dir(), "integration tests: only tests/integration/test_retrain.py lets alerts act")
    yield
    if not env.KEEP_ENV.get():
        mlp("env", "down", check=False)


@pytest.fixture(scope="session")
def packaged_variants() -> dict[str, Path]:
    """The packaged variants the tests register, in build/models (built once with the packaging venv if missing)."""
    from pipelines.commands.model import artifact_dir

    def packaged(d: Path) -> bool:
        return any((d / f).exists() for f in ("model.onnx", "model.gguf")) and (d / "metrics.json").exists()

    dirs = {v: artifact_dir(v) for v in VARIANT_ALIASES}
    if not all(packaged(d) for d in dirs.values()):
        mlp("model", "package", "--variant", "registered", timeout=1800)
    return dirs


@pytest.fixture(scope="session")
def registered_versions(local_env: None, packaged_variants: dict[str, Path]) -> dict[str, int]:
    """variant -> version number; fp32 is `champion`, int8 `challenger` at the start of the session."""
    from pipelines.registry.register import register

    versions = {}
    for variant, alias in VARIANT_ALIASES.items():
        versions[variant] = register(packaged_variants[variant], alias=alias, progress=lambda _m: None).version
    return versions


def generator_name() -> str:
    (name,) = [m.name for m in policy().models if m.task == "generate"]
    return name


def policy_file(folder: Path, edit: Callable[[dict[str, Any]], None]) -> Path:
    """policy.yaml as committed, changed by `edit`, written into `folder`."""
    raw = yaml.safe_load((REPO_ROOT / "policy.yaml").read_text())
    edit(raw)
    path = folder / "policy.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def without_shadow(raw: dict[str, Any]) -> None:
    """A release that goes straight to its first traffic step: for the tests not about the shadow phase, which
    would otherwise spend its local 20 s plus the logs' flush on every release (tests/integration/test_shadow.py
    and test_release.py's promotion and underconfident tests keep it)."""
    raw["canary"]["shadow"]["enabled"] = False


def relaxed_speed_policy(folder: Path) -> Path:
    """policy.yaml with the gate's speed limits out of reach of the suite's load: the integration tests register and
    serve a gated file; the gate's thresholds are tests/pipelines/test_generation_gate.py's."""
    return policy_file(
        folder, lambda raw: raw["generation"].update(gate_min_tokens_per_second=0.1, gate_max_ttft_p95_ms=600000)
    )


@pytest.fixture(scope="session")
def registered_generator(local_env: None, tmp_path_factory: pytest.TempPathFactory) -> int:
    """The catalogue's generate model packaged, gated and registered (the same file is registered once)."""
    mlp("model", "package-generator", timeout=900)
    relaxed = {"MLP_POLICY": str(relaxed_speed_policy(tmp_path_factory.mktemp("policy")))}
    mlp("model", "gate-generator", "--model", generator_name(), timeout=600, extra_env=relaxed)
    first = json.loads(mlp("model", "register-generator", "--json", timeout=600).stdout)
    again = json.loads(mlp("model", "register-generator", "--json", timeout=600).stdout)
    assert (again["version"], again["reused"]) == (first["version"], True)  # the same file is not registered twice
    return int(first["version"])


RAG_TEST_CORPUS = ["runbooks"]


def quick_rag_gate_policy(folder: Path, **gate: float) -> dict[str, str]:
    """The RAG model on the runbooks alone (237 chunks, not the 1,300 of runbooks and docs: the suite's time), gated
    on three generated answers with its latency limits and the generator's budget out of reach of the suite's load
    (three workers on two cores: a 48-token answer can take longer than the 7 s budget, and a generation abandoned at
    the budget still runs on, so the next answers queue behind it and fall back too). Recall is held to 0.5: the
    14 labelled questions the docs answer cannot be found in the runbooks (they score 0.65 there); groundedness to
    0.3: on the runbooks alone one of the first three greedy answers keeps to its excerpts (the whole corpus: 7 of 8,
    docs/rag.md). The whole corpus against the shipped thresholds: tests/pipelines/rag/test_retrieval_quality.py."""

    def edit(raw: dict[str, Any]) -> None:
        raw["rag"].update(corpus=RAG_TEST_CORPUS, gate_generated_questions=3)
        raw["rag"].update(gate_min_recall_at_k=0.5, gate_min_groundedness=0.3)
        raw["rag"].update(gate_max_retrieval_p95_ms=60000, gate_max_answer_p95_ms=60000, generate_timeout_seconds=60)
        raw["rag"].update(gate)

    return {"MLP_POLICY": str(policy_file(folder, edit))}


@pytest.fixture(scope="session")
def registered_rag(registered_generator: int, tmp_path_factory: pytest.TempPathFactory) -> int:
    """The RAG model's version built from this checkout's runbooks: the embedder registered and served, the corpus
    ingested through the gateway, gated, registered (not served: `mlp rag serve`)."""
    embedder = json.loads(mlp("rag", "register-embedder", "--json").stdout)
    mlp("rag", "serve-embedder", str(embedder["version"]), timeout=300)
    quick = quick_rag_gate_policy(tmp_path_factory.mktemp("rag-policy"))
    mlp("rag", "ingest", "--generator-version", str(registered_generator), timeout=600, extra_env=quick)
    gate = mlp("rag", "gate", timeout=900, extra_env=quick)
    assert "Gate passed" in gate.stderr + gate.stdout
    return int(json.loads(mlp("rag", "register", "--json", timeout=600).stdout)["version"])
