"""Retrieval quality of the shipped corpus against the labelled questions, with the embedder's packaged encoder in
this process (`make test-models` packages it): recall@k and MRR must clear the policy's gate. The integration test
runs the same gate through the served embedder on a smaller corpus; this one holds the whole corpus to the bar."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core.policy import REPO_ROOT, policy
from pipelines.rag.corpus import chunk_corpus, read_corpus
from pipelines.rag.evaluate import judge, measure, read_questions
from services.model_runtime.qdrant_edge_store import EdgeStore
from services.model_runtime.rag import PROMPT_TEMPLATE, Embedded, Generated, Pinned, RagConfig, RagPipeline
from services.model_runtime.runtimes import load_classifier

FP32 = REPO_ROOT / "build" / "models" / "fp32"  # the package the embed model's versions are registered from


def test_the_shipped_corpus_retrieves_the_labelled_files_well_enough_to_pass_the_gate(tmp_path: Path) -> None:
    p = policy().for_model(next(m.name for m in policy().models if m.task == "rag"))
    r = p.rag
    chunks = chunk_corpus(read_corpus(REPO_ROOT, r.corpus), r.chunk_max_chars)
    encoder = load_classifier(FP32, threads=2)
    vectors = np.vstack([encoder.embed([c.text for c in chunks[i : i + 64]]) for i in range(0, len(chunks), 64)])
    store = EdgeStore.open(tmp_path / "shard", vectors.shape[1])
    store.add(chunks, vectors)
    config = RagConfig(
        "rag", Pinned("e", 1), Pinned("g", 1), PROMPT_TEMPLATE, r.top_k, r.prompt_context_chars, r.answer_new_tokens,
        r.chunk_max_chars, list(r.corpus), "c", 0, len(chunks), int(vectors.shape[1]), "i",
    )  # fmt: skip

    def no_generation(prompt: str, n: int) -> Generated:
        raise AssertionError("this test measures retrieval only")

    pipeline = RagPipeline(config, store, lambda q: Embedded(encoder.embed([q])[0], 1), no_generation)
    m = measure(pipeline, read_questions(), generated=0, min_token_share=r.grounded_min_token_share)
    verdict = {c.name: c.passed for c in judge(m, r)}
    print(f"\nrecall@{m.k} {m.recall_at_k:.3f}, MRR {m.mrr:.3f}, misses {m.misses}")
    assert verdict[f"retrieval recall@{r.top_k}"], m.recall_at_k
    assert verdict["retrieval MRR"], m.mrr
