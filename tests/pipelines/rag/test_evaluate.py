"""The RAG gate's measures on a stand-in pipeline whose right answers are known by construction."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.policy import policy
from pipelines.rag.evaluate import (
    LabelledQuestion,
    first_relevant_rank,
    grounded_share,
    judge,
    measure,
    read_questions,
)
from services.model_runtime.qdrant_edge_store import EdgeStore
from services.model_runtime.rag import PROMPT_TEMPLATE, Embedded, Generated, Pinned, RagConfig, RagPipeline
from services.model_runtime.vector_store import Chunk

DIM = 6


def test_grounded_share_counts_the_answers_content_words_found_in_its_sources() -> None:
    sources = ["Roll back with mlp release abort, then check the canary latency ratio."]
    assert grounded_share("Run mlp release abort [1].", sources) == pytest.approx(2 / 2)  # release, abort
    assert grounded_share("Restart the database cluster.", sources) == 0.0
    assert grounded_share("[1] ok", sources) == 0.0  # no content words: never grounded


def test_first_relevant_rank() -> None:
    assert first_relevant_rank(["a.md", "b.md", "b.md"], "b.md") == 2
    assert first_relevant_rank(["a.md"], "b.md") is None


def pipeline(tmp_path: Path, answers: dict[str, str]) -> RagPipeline:
    """Chunk i (file f<i>.md) is e_i; question `q<i>` points at chunk i, then chunk i-1, so it retrieves its own file
    first; q5 points at chunks 0, 1, 2 (its file f5.md is not among the top 3)."""
    chunks = [Chunk(i, f"f{i}.md", f"s{i}", f"text about topic{i} words") for i in range(DIM)]
    store = EdgeStore.open(tmp_path / "s", DIM)
    store.add(chunks, np.eye(DIM, dtype=np.float32))
    cfg = RagConfig(
        "m", Pinned("e", 1), Pinned("g", 1), PROMPT_TEMPLATE, 3, 500, 8, 600, ["docs"], "c", 1, DIM, DIM, "i"
    )

    def embed(q: str) -> Embedded:
        i = int(q[1:])
        v = np.zeros(DIM, dtype=np.float32)
        if i == 5:
            v[0], v[1], v[2] = 1.0, 0.9, 0.8
        else:
            v[i], v[(i - 1) % DIM] = 1.0, 0.5  # chunk i first, then chunk i-1
        return Embedded(v / np.linalg.norm(v), 1)

    def generate(prompt: str, n: int) -> Generated:
        question = prompt.rsplit("Question: ", 1)[1].split("\n")[0]
        return Generated(answers[question], 1, 5)

    return RagPipeline(cfg, store, embed, generate)


def questions() -> list[LabelledQuestion]:
    out = [LabelledQuestion(f"id{i}", f"q{i}", f"f{i}.md", f"s{i}", [f"topic{i}"]) for i in range(DIM)]
    out[1] = LabelledQuestion("id1", "q1", "f0.md", "s0", ["topic0"])  # its file is retrieved second
    return out


def test_recall_mrr_and_groundedness_are_measured_per_question(tmp_path: Path) -> None:
    answers = {"q0": "Words about topic0.", "q1": "Something unrelated entirely.", "q2": "topic2 words text"}
    m = measure(pipeline(tmp_path, answers), questions(), generated=3, min_token_share=0.6)
    # q0, q2, q3, q4: rank 1; q1: its file f0.md ranks 2; q5: f5.md not retrieved.
    assert m.recall_at_k == pytest.approx(5 / 6) and m.misses == ["id5"]
    assert m.mrr == pytest.approx((4 * 1 + 1 / 2 + 0) / 6)
    assert m.generated == 3 and m.fallbacks == 0
    assert m.groundedness == pytest.approx(2 / 3)  # q1's answer shares no word with its sources
    assert m.key_fact_recall == pytest.approx(2 / 3)


def test_the_gate_fails_on_each_threshold_it_misses(tmp_path: Path) -> None:
    answers = {"q0": "Unrelated.", "q1": "Unrelated.", "q2": "Unrelated."}
    m = measure(pipeline(tmp_path, answers), questions(), generated=3, min_token_share=0.6)
    verdict = {c.name: c.passed for c in judge(m, policy().rag)}
    assert verdict["answer groundedness"] is False
    assert verdict["retrieval recall@3"] is True and verdict["retrieval MRR"] is True


def test_the_shipped_questions_read(tmp_path: Path) -> None:
    qs = read_questions()
    assert len(qs) >= 30 and all(q.key_facts for q in qs)
    bad = tmp_path / "q.jsonl"
    bad.write_text('{"id": "x"}\n')
    with pytest.raises(ValueError, match=r"q\.jsonl:1: not a labelled question"):
        read_questions(bad)
