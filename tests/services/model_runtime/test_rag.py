"""A RAG version's pipeline with stand-ins for the embedder and generator servers (their HTTP clients raise the same
errors): the prompt budget, what is cited, the version checks and the retrieval-only fallback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from services.model_runtime.qdrant_edge_store import EdgeStore
from services.model_runtime.rag import (
    PROMPT_TEMPLATE,
    Embedded,
    EmbedderUnavailable,
    Generated,
    GeneratorUnavailable,
    Pinned,
    RagConfig,
    RagPipeline,
    build_prompt,
    index_sha256,
    load_index,
    read_index,
    tidy,
    write_index,
)
from services.model_runtime.vector_store import Chunk, Hit

DIM = 8


def chunks_and_vectors() -> tuple[list[Chunk], np.ndarray]:
    chunks = [Chunk(i, f"runbooks/r{i}.md", f"S{i}", f"chunk {i} " + "x" * 90) for i in range(DIM)]
    return chunks, np.eye(DIM, dtype=np.float32)  # chunk i is the unit vector e_i


def config(sha: str, generator_version: int = 2, context_chars: int = 250) -> RagConfig:
    return RagConfig(
        name="oncall-rag", embedder=Pinned("minilm-embedder", 1), generator=Pinned("gemma3-270m", generator_version),
        prompt_template=PROMPT_TEMPLATE, top_k=3, prompt_context_chars=context_chars, answer_new_tokens=16,
        chunk_max_chars=600, corpus=["runbooks"], corpus_sha256="c" * 64, corpus_files=DIM, chunks=DIM, dim=DIM,
        index_sha256=sha,
    )  # fmt: skip


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    chunks, vectors = chunks_and_vectors()
    write_index(tmp_path, chunks, vectors)
    return tmp_path


def near(i: int, version: int = 1) -> Embedded:
    v = np.full(DIM, 0.05, dtype=np.float32)
    v[i], v[(i + 1) % DIM] = 1.0, 0.5  # closest to chunk i, then i+1
    return Embedded(v / np.linalg.norm(v), version)


class Generator:
    def __init__(self, version: int = 2, fail: Exception | None = None) -> None:
        self.version, self.fail, self.prompts = version, fail, []  # type: list[str]

    def __call__(self, prompt: str, max_tokens: int) -> Generated:
        self.prompts.append(prompt)
        if self.fail:
            raise self.fail
        return Generated(
            " Roll back with mlp release abort [1]. \n Roll back with mlp release abort [1].", self.version, 9
        )


def pipeline(folder: Path, generator: Generator, embed_version: int = 1, **cfg: int) -> RagPipeline:
    c = config(index_sha256(folder), **cfg)
    store = EdgeStore.open(folder / "shard", DIM)
    load_index(folder, c, store)
    return RagPipeline(c, store, lambda q: near(4, embed_version), generator)


def test_the_index_snapshot_reads_back_as_written(folder: Path) -> None:
    chunks, vectors = read_index(folder)
    assert chunks == chunks_and_vectors()[0] and np.array_equal(vectors, np.eye(DIM, dtype=np.float32))


def test_an_index_changed_after_ingestion_is_refused(folder: Path) -> None:
    c = config(index_sha256(folder))
    (folder / "index" / "chunks.jsonl").write_text("{}\n")
    with pytest.raises(ValueError, match="does not match the hash"):
        load_index(folder, c, EdgeStore.open(folder / "shard", DIM))


def test_a_generated_answer_cites_what_the_prompt_quoted_in_rank_order(folder: Path) -> None:
    gen = Generator()
    out = pipeline(folder, gen).answer("how do I roll back?")
    assert out.mode == "generated" and out.answer == "Roll back with mlp release abort [1]."  # its repeat dropped
    assert len(out.citations) == 3  # 250 characters of context: the three ~100-character chunks, the last cut
    assert [c.source for c in out.citations[:2]] == ["runbooks/r4.md", "runbooks/r5.md"]
    assert out.citations[0].rank == 1 and out.citations[0].score > out.citations[-1].score
    (prompt,) = gen.prompts
    assert "[1] runbooks/r4.md - S4" in prompt and prompt.rstrip().endswith("Question: how do I roll back?\nAnswer:")
    assert set(out.timings_ms) == {"embed", "retrieve", "generate", "total"}


def test_the_prompt_quotes_hits_until_its_budget_is_spent() -> None:
    hits = [Hit(Chunk(i, f"f{i}.md", f"s{i}", "y" * 100), 1 - i / 10) for i in range(4)]
    prompt, quoted = build_prompt("{context}|{question}", "q", hits, 150)
    assert quoted == 2  # 100 characters of the first, the remaining 50 of the second
    assert prompt.count("y") == 150 and "[3]" not in prompt


@pytest.mark.parametrize(
    ("generator", "reason"),
    [
        (Generator(fail=GeneratorUnavailable("the generator took longer than 7.0s")), "took longer than 7.0s"),
        (Generator(version=3), "gemma3-270m serves v3, this RAG version pins v2"),
    ],
)
def test_without_the_pinned_generator_the_answer_is_the_retrieved_chunks(
    folder: Path, generator: Generator, reason: str
) -> None:
    out = pipeline(folder, generator).answer("how do I roll back?")
    assert out.mode == "retrieval_only" and out.answer is None and reason in str(out.fallback_reason)
    assert len(out.citations) == 3 and out.citations[0].source == "runbooks/r4.md"  # still every retrieved chunk


def test_an_embedder_serving_another_version_than_the_index_fails_the_question(folder: Path) -> None:
    with pytest.raises(EmbedderUnavailable, match="serves v2, but this index was built with v1"):
        pipeline(folder, Generator(), embed_version=2).answer("q")


def test_retrieval_only_when_no_generation_is_asked(folder: Path) -> None:
    gen = Generator()
    out = pipeline(folder, gen).answer("q", generate=False)
    assert out.mode == "retrieval_only" and not gen.prompts and out.fallback_reason == "generation not requested"


def test_repeated_lines_of_a_greedy_answer_are_kept_once() -> None:
    assert tidy("- check the ratio\n- check the ratio\n\n- roll back\n- Check the ratio ") == (
        "- check the ratio\n\n- roll back"
    )
