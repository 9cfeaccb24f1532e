"""A RAG version as one unit: what it pins (rag.json), its index snapshot, its prompt, and how it answers.

A version's folder:
- `rag.json`: the embedder's and the generator's catalogue names and versions, the prompt template, top-k and the
  prompt budget, the chunking settings and the corpus' content hash (lineage: `RagConfig`);
- `index/chunks.jsonl` and `index/vectors.npy`: the collection snapshot, engine-neutral (one chunk per line, its
  embedding on the same row), loaded into the embedded engine or a Qdrant server when the server starts.

`RagPipeline.answer` embeds the question with the pinned embedder, retrieves the top-k chunks, builds the prompt and
asks the pinned generator; when the generator is down, slow, or serves another version, the answer is the retrieved
chunks alone (`mode` says which, `fallback_reason` why). Nothing here speaks HTTP: the server passes the clients in.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from services.model_runtime.vector_store import Chunk, Hit, VectorStore

RAG_CONFIG = "rag.json"
INDEX_DIR = "index"
CHUNKS_FILE = "chunks.jsonl"
VECTORS_FILE = "vectors.npy"

# Citations are numbered in the prompt as they are in the answer's `citations` (rank order).
PROMPT_TEMPLATE = (
    "You are the on-call assistant of an ML platform. Answer the question from the documentation excerpts below, "
    "briefly, and cite the excerpts you used as [1], [2].\n\n{context}\n\nQuestion: {question}\nAnswer:"
)
EXCERPT_TEMPLATE = "[{rank}] {source} - {section}\n{text}"


@dataclass(frozen=True)
class Pinned:
    model: str
    version: int


@dataclass(frozen=True)
class RagConfig:
    """What a RAG version pins, and its lineage."""

    name: str
    embedder: Pinned
    generator: Pinned
    prompt_template: str
    top_k: int
    prompt_context_chars: int
    answer_new_tokens: int
    chunk_max_chars: int
    corpus: list[str]
    corpus_sha256: str  # of every corpus file's path and content, in path order
    corpus_files: int
    chunks: int
    dim: int
    index_sha256: str  # of chunks.jsonl and vectors.npy

    @classmethod
    def read(cls, folder: Path) -> RagConfig:
        try:
            raw = json.loads((folder / RAG_CONFIG).read_text())
            raw["embedder"], raw["generator"] = Pinned(**raw["embedder"]), Pinned(**raw["generator"])
            return cls(**raw)
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise ValueError(f"{folder}: no valid {RAG_CONFIG} ({exc}); rebuild it with `mlp rag ingest`") from exc

    def write(self, folder: Path) -> None:
        (folder / RAG_CONFIG).write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")

    def sha256(self) -> str:
        """Of everything the version pins (the index by its hash, the models, the prompt and its settings): what its
        gate judged and what the registry tells versions apart by. Two builds that differ only in the prompt or top_k
        are two versions, each gated."""
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()


def write_index(folder: Path, chunks: Sequence[Chunk], vectors: np.ndarray) -> str:
    """Write the collection snapshot into `folder/index`; its SHA-256 (chunks, then vectors)."""
    index = folder / INDEX_DIR
    index.mkdir(parents=True, exist_ok=True)
    lines = "".join(json.dumps(c.payload(), sort_keys=True) + "\n" for c in chunks)
    (index / CHUNKS_FILE).write_text(lines)
    np.save(index / VECTORS_FILE, np.ascontiguousarray(vectors, dtype=np.float32), allow_pickle=False)
    return index_sha256(folder)


def index_sha256(folder: Path) -> str:
    digest = hashlib.sha256()
    for name in (CHUNKS_FILE, VECTORS_FILE):
        digest.update((folder / INDEX_DIR / name).read_bytes())
    return digest.hexdigest()


def read_index(folder: Path) -> tuple[list[Chunk], np.ndarray]:
    index = folder / INDEX_DIR
    chunks = [Chunk.from_payload(json.loads(line)) for line in (index / CHUNKS_FILE).read_text().splitlines()]
    vectors = np.load(index / VECTORS_FILE, allow_pickle=False)
    if vectors.shape[0] != len(chunks):
        raise ValueError(f"{index}: {len(chunks)} chunks but {vectors.shape[0]} vectors; rebuild with `mlp rag ingest`")
    return chunks, vectors


def load_index(folder: Path, config: RagConfig, store: VectorStore) -> None:
    """Fill `store` with the version's snapshot, verified against the hash the version pinned (unless the store
    already holds it: a Qdrant server keeps a version's collection across restarts)."""
    if index_sha256(folder) != config.index_sha256:
        raise ValueError(f"{folder}: the index does not match the hash in {RAG_CONFIG}; it was changed after ingestion")
    if store.count() == config.chunks:
        return
    chunks, vectors = read_index(folder)
    store.add(chunks, vectors)


# ---------------------------------------------------------------- answering


@dataclass(frozen=True)
class Embedded:
    vector: np.ndarray
    version: int  # the version that answered (X-Model-Version)


@dataclass(frozen=True)
class Generated:
    text: str
    version: int
    completion_tokens: int


class EmbedderUnavailable(RuntimeError):
    """No embedding, so nothing can be retrieved: the request fails (503) with this message."""


class GeneratorUnavailable(RuntimeError):
    """No generation within budget: the answer falls back to the retrieved chunks."""


@dataclass(frozen=True)
class Citation:
    rank: int
    source: str
    section: str
    score: float
    text: str


Mode = Literal["generated", "retrieval_only"]


@dataclass
class Answer:
    question: str
    mode: Mode
    answer: str | None
    citations: list[Citation]
    fallback_reason: str | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)
    completion_tokens: int = 0


def build_prompt(template: str, question: str, hits: Sequence[Hit], context_chars: int) -> tuple[str, int]:
    """The prompt, and how many hits it quotes: excerpts in rank order until `context_chars` is spent (the last one
    cut to fit); every hit that contributes text is cited by its rank."""
    parts: list[str] = []
    left = context_chars
    for rank, hit in enumerate(hits, start=1):
        if left <= 0:
            break
        text = hit.chunk.text[:left]
        left -= len(text)
        parts.append(EXCERPT_TEMPLATE.format(rank=rank, source=hit.chunk.source, section=hit.chunk.section, text=text))
    return template.format(context="\n\n".join(parts), question=question), len(parts)


def tidy(text: str) -> str:
    """The answer without the lines a small greedy model repeats: each line once, in first-seen order."""
    seen: set[str] = set()
    lines = []
    for line in text.strip().splitlines():
        key = line.strip().lower()
        if key and key in seen:
            continue
        seen.add(key)
        lines.append(line.rstrip())
    return "\n".join(lines).strip()


class RagPipeline:
    def __init__(
        self,
        config: RagConfig,
        store: VectorStore,
        embed: Callable[[str], Embedded],
        generate: Callable[[str, int], Generated],
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.config = config
        self.store = store
        self.embed = embed
        self.generate = generate
        self.clock = clock

    def retrieve(self, question: str, k: int | None = None) -> tuple[list[Hit], dict[str, float]]:
        """The top-k chunks for the question and the time each step took (ms). EmbedderUnavailable when the
        embedder is down or serves a version other than the one the index was built with."""
        t0 = self.clock()
        embedded = self.embed(question)
        if embedded.version != self.config.embedder.version:
            raise EmbedderUnavailable(
                f"{self.config.embedder.model} serves v{embedded.version}, but this index was built with "
                f"v{self.config.embedder.version}: serve that version, or release a RAG version built with the new one"
            )
        t1 = self.clock()
        hits = self.store.search(embedded.vector, k or self.config.top_k)
        t2 = self.clock()
        return hits, {"embed": (t1 - t0) * 1000, "retrieve": (t2 - t1) * 1000}

    def answer(self, question: str, generate: bool = True) -> Answer:
        started = self.clock()
        hits, timings = self.retrieve(question)
        prompt, quoted = build_prompt(self.config.prompt_template, question, hits, self.config.prompt_context_chars)
        citations = [
            Citation(rank, h.chunk.source, h.chunk.section, round(h.score, 4), h.chunk.text)
            for rank, h in enumerate(hits, start=1)
        ]
        result = Answer(question, "retrieval_only", None, citations, timings_ms=timings)
        if not generate:
            result.fallback_reason = "generation not requested"
        else:
            t0 = self.clock()
            try:
                out = self.generate(prompt, self.config.answer_new_tokens)
                if out.version != self.config.generator.version:
                    raise GeneratorUnavailable(
                        f"{self.config.generator.model} serves v{out.version}, this RAG version pins "
                        f"v{self.config.generator.version}"
                    )
                result.mode, result.answer, result.completion_tokens = (
                    "generated",
                    tidy(out.text),
                    out.completion_tokens,
                )
                result.citations = citations[:quoted]  # only what the generator was shown
            except GeneratorUnavailable as exc:
                result.fallback_reason = str(exc)
            timings["generate"] = (self.clock() - t0) * 1000
        timings["total"] = (self.clock() - started) * 1000
        return result
