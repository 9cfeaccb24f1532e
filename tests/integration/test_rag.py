"""The RAG model on the local runtime, end to end with real servers: the embedder registered and served, the corpus
ingested through the gateway, the version gated on the labelled questions, registered with its pins, served behind
the gateway; then its failure modes (a bad question, the generator down, the embedder down), its metrics, and the
release of a second version through the canary."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from core import contracts, endpoints, promql
from core.policy import REPO_ROOT, policy
from infra.local import generators, serving, tls
from infra.local.paths import build_dir
from infra.local.prometheus import query
from infra.local.secrets import api_key
from pipelines.rag.corpus import read_corpus
from pipelines.rag.local import ensure_pinned, gate_report_name
from pipelines.release.store import StateStore
from services.model_runtime.rag import RagConfig
from tests.integration.conftest import MLP, RAG_TEST_CORPUS, cli_env, mlp, policy_file, quick_rag_gate_policy

pytestmark = pytest.mark.integration

QUESTION = "the canary was rolled back with latency ratio 1.6, what do I check?"


def rag_name() -> str:
    (name,) = [m.name for m in policy().models if m.task == "rag"]
    return name


@pytest.fixture(scope="module")
def rag_version(registered_rag: int) -> Iterator[int]:
    version = registered_rag
    served = mlp("rag", "serve", str(version), timeout=600)
    assert contracts.model_route(rag_name(), "rag") in served.stdout
    yield version
    for model in (rag_name(), policy().rag.embedder_model, policy().rag.generator_model):
        if any(s.model == model for s in generators.live()):
            serving.stop_catalogue_server(model)


@pytest.fixture(scope="module")
def release_policy(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The RAG release tests' policy: a 20 s window measured every 5 s, 10 canary requests enough, a latency ratio up
    to 3. These tests are about the split, the promotion and the rollback of a RAG version; how a canary's latency is
    judged is tests/integration/test_release.py's, which runs alone (decision 0172): beside other modules on two cores
    a 10% canary's p95 is its neighbours'."""

    def edit(raw: dict[str, Any]) -> None:
        raw["canary"]["analysis"].update(
            local_window_seconds=20, local_interval_seconds=5, min_requests=10, max_latency_ratio=3.0
        )

    return {"MLP_POLICY": str(policy_file(tmp_path_factory.mktemp("release-policy"), edit))}


def built() -> Path:
    return build_dir() / "rag" / rag_name()


def gateway(key: str | None = "demo") -> httpx.Client:
    headers = {contracts.API_KEY_HEADER: api_key(key)} if key else {}
    return httpx.Client(base_url=endpoints.gateway_url(), headers=headers, timeout=60, verify=tls.client_context())


def ask(question: str, key: str | None = "demo", **extra: object) -> httpx.Response:
    with gateway(key) as client:
        return client.post(contracts.model_route(rag_name(), "rag"), json={"question": question, **extra})


def generated_answer(question: str, tries: int = 4) -> httpx.Response:
    """The served version keeps the shipped 7 s generation budget (the gateway's upstream timeout is 10 s). Under the
    suite's load one generation can overrun it and fall back; the abandoned generation still runs on the generator,
    so ask again once it is free, for an answer generated within the budget."""
    resp = ask(question)
    for _ in range(tries - 1):
        if resp.status_code != 200 or resp.json()["mode"] == "generated":
            break
        assert "budget" in resp.json()["fallback_reason"], resp.json()  # only an overrun is retried
        time.sleep(10)
        resp = ask(question)
    return resp


def test_an_on_call_question_is_answered_through_the_gateway_with_citations(rag_version: int) -> None:
    resp = generated_answer(QUESTION)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert resp.headers[contracts.VERSION_HEADER] == str(rag_version) == str(body["model_version"])
    assert body["mode"] == "generated" and body["answer"], body
    sources = [c["source"] for c in body["citations"]]
    assert "runbooks/canary-analysis-failed.md" in sources
    assert all(c["section"] and c["text"] for c in body["citations"])
    assert set(body["timings_ms"]) == {"embed", "retrieve", "generate", "total"}
    cli = mlp("rag", "ask", QUESTION, "--no-generate")
    assert "A (retrieval_only): generation not requested" in cli.stdout and "[1] " in cli.stdout


def test_the_registered_version_pins_its_models_and_records_its_corpus(rag_version: int) -> None:
    from services.registry.client import get_version

    tags = get_version(rag_version, rag_name()).tags
    config = RagConfig.read(built())
    assert tags["embedder"] == f"{config.embedder.model}/{config.embedder.version}"
    assert tags["generator"] == f"{config.generator.model}/{config.generator.version}"
    assert tags["corpus_sha256"] == read_corpus(REPO_ROOT, RAG_TEST_CORPUS).sha256 == config.corpus_sha256
    assert tags["index_sha256"] == config.index_sha256 and tags["gate"] == "passed"
    gate = json.loads((build_dir() / "reports" / gate_report_name(rag_name())).read_text())
    assert gate["index_sha256"] == config.index_sha256
    assert gate["version_sha256"] == config.sha256() == tags["version_sha256"]  # the very build the gate judged
    assert float(tags["gate_recall_at_k"]) == pytest.approx(gate["measures"]["recall_at_k"], abs=1e-5)


def test_bad_questions_are_refused_with_the_reason(rag_version: int) -> None:
    empty = ask("   ")
    assert empty.status_code == 400 and "question is empty" in empty.text
    limit = policy().rag.max_question_chars
    long = ask("x" * (limit + 1))
    assert long.status_code == 400 and f"at most {limit}" in long.text
    assert ask(QUESTION, top_k=50).status_code == 400  # no such field: the version pins its top-k
    assert ask(QUESTION, key=None).status_code == 401


def test_with_the_generator_down_the_answer_is_the_retrieved_chunks(rag_version: int) -> None:
    generator = policy().rag.generator_model
    serving.stop_catalogue_server(generator)
    try:
        resp = ask(QUESTION)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["mode"] == "retrieval_only" and body["answer"] is None
        assert "generator" in body["fallback_reason"] and body["citations"]
    finally:
        ensure_pinned(RagConfig.read(built()).generator)


def test_with_the_embedder_down_the_question_fails_naming_it(rag_version: int) -> None:
    embedder = policy().rag.embedder_model
    serving.stop_catalogue_server(embedder)
    try:
        resp = ask(QUESTION)
        assert resp.status_code == 503 and "the embedder at" in resp.text and "rag-answers-degraded" in resp.text
    finally:
        ensure_pinned(RagConfig.read(built()).embedder)
    assert ask(QUESTION, generate=False).status_code == 200  # back once it is served again


def test_prometheus_counts_answers_by_mode(rag_version: int) -> None:
    ask(QUESTION, generate=False)
    expr = f'sum by (mode) (mlp_rag_answers_total{{model_name="{rag_name()}"}})'
    deadline = time.monotonic() + 30
    modes: dict[str, float] = {}
    while time.monotonic() < deadline and "retrieval_only" not in modes:
        modes = {r["metric"]["mode"]: float(r["value"][1]) for r in query(expr)}
        time.sleep(2)
    assert modes.get("retrieval_only", 0) >= 1 and modes.get("generated", 0) >= 1, modes
    # The start time a canary analysis reads to see a restart between two scrapes (core/canary.py).
    started = query(f'{promql.MODEL_SERVER_STARTED}{{model_name="{rag_name()}",model_version="{rag_version}"}}')
    assert started and float(started[0]["value"][1]) > 0, started


def test_a_version_that_fails_its_gate_is_not_registered(rag_version: int, tmp_path: Path) -> None:
    from services.registry.client import list_versions

    before = len(list_versions(rag_name()))
    folder = str(built())
    strict = {**quick_rag_gate_policy(tmp_path, gate_min_recall_at_k=1.0), "MLP_BUILD_DIR": str(tmp_path / "build")}
    failed = mlp("rag", "gate", "--path", folder, check=False, timeout=900, extra_env=strict)
    assert failed.returncode == 1 and "Gate failed" in failed.stderr + failed.stdout
    refused = mlp("rag", "register", "--path", folder, check=False, extra_env=strict)
    assert refused.returncode == 1 and "failed its gate (retrieval recall@4)" in refused.stderr + refused.stdout
    assert len(list_versions(rag_name())) == before


def test_each_answer_is_kept_in_the_inference_log_with_its_citations(rag_version: int) -> None:
    from infra.local.s3 import client
    from pipelines.drift.logs import ReadStats, Window, read_rows

    marker = f"which runbook covers a stuck release? ({time.time_ns()})"
    assert ask(marker, generate=False).status_code == 200
    deadline = time.monotonic() + policy().serving.inference_log_flush_seconds + 20
    rows: list[dict[str, object]] = []
    while time.monotonic() < deadline and not rows:
        time.sleep(2)
        now = datetime.now(UTC)
        window = Window(now - timedelta(minutes=10), now + timedelta(minutes=1))
        found = read_rows(client(), contracts.INFERENCE_LOG_BUCKET, rag_name(), rag_version, window, ReadStats())
        rows = [r for r in found if r.get("text") == marker]
    assert rows, "the question never reached the inference log"
    (row,) = rows
    assert row["label"] == "retrieval_only" and row["citations"] and row["model_version"] == rag_version


def test_a_new_version_is_released_through_the_canary_beside_the_serving_one(
    rag_version: int, tmp_path: Path, release_policy: dict[str, str]
) -> None:
    """A second build (the same corpus with top_k 3: another version, gated on its own) starts beside the serving
    version with no traffic, takes 10% of the route through the analysis window, then all of it; the old version is
    drained and stopped, and the champion alias moves."""
    from services.registry.client import get_alias, get_version

    build = {
        # Its gate answers one question, groundedness not held: this test is about the release (v1's gate held it).
        **quick_rag_gate_policy(tmp_path, top_k=3, gate_generated_questions=1, gate_min_groundedness=0.0),
        "MLP_BUILD_DIR": str(tmp_path / "build"),
    }
    generator = RagConfig.read(built()).generator.version
    mlp("rag", "ingest", "--generator-version", str(generator), timeout=600, extra_env=build)
    mlp("rag", "gate", timeout=900, extra_env=build)
    candidate = int(json.loads(mlp("rag", "register", "--json", timeout=600, extra_env=build).stdout)["version"])
    assert candidate != rag_version  # another build is another version, even on the same index

    release = mlp(
        "release", "start", "--model", rag_name(), "--version", str(candidate), "--drive-traffic", "12",
        check=False, timeout=900, extra_env=release_policy,
    )  # fmt: skip
    out = release.stdout + release.stderr
    assert release.returncode == 0, out
    assert "analysis at 10%: pass" in out
    traffic = json.loads(out.split("traffic driven: ", 1)[1].splitlines()[0])
    assert traffic["by_version"].get(str(rag_version), 0) > 0 < traffic["by_version"].get(str(candidate), 0), traffic
    assert traffic["non_2xx"] == 0 and traffic["transport_errors"] == 0, traffic  # nothing lost while it moved
    assert get_alias(policy().release.champion_alias, rag_name()) == candidate
    assert get_version(candidate, rag_name()).tags["release.status"] == "promoted"
    assert [(s.version, s.weight) for s in generators.live_of(rag_name())] == [(candidate, 100)]
    resp = ask(QUESTION, generate=False)
    assert resp.status_code == 200 and resp.headers[contracts.VERSION_HEADER] == str(candidate)


def test_a_canary_whose_server_dies_is_rolled_back_and_no_question_is_lost(
    rag_version: int, release_policy: dict[str, str]
) -> None:
    """Runs after the promotion above: the first version, released again, is killed mid-analysis. The analysis sees
    it down (or restarted), stable takes the whole route back, and the gateway's retry of a refused connection on the
    model's other server keeps every question answered."""
    import psutil

    from infra.local.supervisor import ctl
    from services.registry.client import get_alias

    serving_now = generators.weights(rag_name())
    assert rag_version not in serving_now, "runs after the promotion test"
    (stable,) = serving_now
    proc = subprocess.Popen(
        [*MLP, "release", "start", "--model", rag_name(), "--version", str(rag_version), "--drive-traffic", "12"],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        env=cli_env(release_policy),
    )  # fmt: skip
    try:
        store = StateStore(rag_name())
        deadline = time.monotonic() + 300
        while not _measuring(store, rag_version):
            assert time.monotonic() < deadline and proc.poll() is None, "the release never reached its analysis"
            time.sleep(1)
        (candidate,) = [s for s in generators.live_of(rag_name()) if s.version == rag_version]
        server = psutil.Process(int(ctl("pid", generators.program_name(rag_name(), candidate.slot)).strip()))
        for p in [*server.children(recursive=True), server]:  # bentoml serve and its workers (they hold the socket)
            p.kill()
        out, _ = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, out
    state = store.load()
    assert state is not None and state.phase.value == "rolled_back"
    assert "up == 0" in state.reason or "restarted" in state.reason, state.reason
    assert generators.weights(rag_name()) == {stable: 100}
    assert get_alias(policy().release.champion_alias, rag_name()) == stable
    assert [s.version for s in generators.live_of(rag_name())] == [stable]  # the candidate's server is stopped
    traffic = json.loads(out.split("traffic driven: ", 1)[1].splitlines()[0])
    assert traffic["by_version"].get(str(rag_version), 0) > 0, traffic  # it had its share before it died
    assert traffic["non_2xx"] == 0 and traffic["transport_errors"] == 0, traffic


def _measuring(store: StateStore, version: int) -> bool:
    """The release of `version` is in its analysis, with a measurement taken."""
    state = store.load()
    if state is None or state.version != version or state.phase.value != "routed" or not state.log_path:
        return False
    return '"event": "measurement"' in Path(state.log_path).read_text()
