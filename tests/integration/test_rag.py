"""The RAG model on the local runtime, end to end with real servers: the embedder registered and served, the corpus
ingested through the gateway, the version gated on the labelled questions, registered with its pins, served behind
the gateway; then its failure modes (a bad question, the generator down, the embedder down) and its metrics."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from core import contracts, endpoints
from core.policy import REPO_ROOT, policy
from infra.local import generators, serving, tls
from infra.local.paths import build_dir
from infra.local.prometheus import query
from infra.local.secrets import api_key
from pipelines.rag.corpus import read_corpus
from pipelines.rag.local import ensure_pinned, gate_report_name
from services.model_runtime.rag import RagConfig
from tests.integration.conftest import RAG_TEST_CORPUS, mlp, quick_rag_gate_policy

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


def built() -> Path:
    return build_dir() / "rag" / rag_name()


def gateway(key: str | None = "demo") -> httpx.Client:
    headers = {contracts.API_KEY_HEADER: api_key(key)} if key else {}
    return httpx.Client(base_url=endpoints.gateway_url(), headers=headers, timeout=60, verify=tls.client_context())


def ask(question: str, key: str | None = "demo", **extra: object) -> httpx.Response:
    with gateway(key) as client:
        return client.post(contracts.model_route(rag_name(), "rag"), json={"question": question, **extra})


def test_an_on_call_question_is_answered_through_the_gateway_with_citations(rag_version: int) -> None:
    resp = ask(QUESTION)
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
