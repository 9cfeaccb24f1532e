"""Ingestion: the corpus cut into chunks, embedded by the platform's served embedder, written as a RAG version's folder
(`rag.json` with its pins and lineage, and the collection snapshot under `index/`; services/model_runtime/rag.py).

Embeddings come from the embed model's route at the gateway, in batches of `serving.max_batch_size`, and every batch
must be answered by the same embedder version: an index mixing two versions' vectors would retrieve nonsense, so a
version change during ingestion stops it (run it again).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from core import contracts
from core.policy import Policy
from pipelines.rag.corpus import chunk_corpus, read_corpus
from services.model_runtime.rag import PROMPT_TEMPLATE, Pinned, RagConfig, write_index
from services.model_runtime.vector_store import Chunk

Progress = Callable[[str], None]
EmbedBatch = Callable[[list[str]], tuple[np.ndarray, int]]


class IngestError(RuntimeError):
    """Ingestion stopped; the message says why and what to do. Nothing was written in place of the old folder."""


class GatewayEmbedder:
    """Embeds batches through the gateway's route of the embed model; returns the vectors and the version."""

    def __init__(self, client: httpx.Client, model: str) -> None:
        self.client = client
        self.route = contracts.model_route(model, "embed")

    def __call__(self, texts: list[str]) -> tuple[np.ndarray, int]:
        try:
            r = self.client.post(self.route, json={"texts": texts})
        except httpx.HTTPError as exc:
            raise IngestError(f"the gateway did not answer {self.route} ({exc}); is the local runtime up?") from exc
        if r.status_code != 200:
            hint = " (is the embedder served? `mlp rag serve-embedder`)" if r.status_code in (404, 502) else ""
            raise IngestError(f"{self.route} answered HTTP {r.status_code}: {r.text[:300]}{hint}")
        body: dict[str, Any] = r.json()
        return np.asarray(body["embeddings"], dtype=np.float32), int(r.headers[contracts.VERSION_HEADER])


def embed_chunks(chunks: Sequence[Chunk], embed: EmbedBatch, batch: int, progress: Progress) -> tuple[np.ndarray, int]:
    """Every chunk's embedding, in order, and the one embedder version that made them all."""
    parts: list[np.ndarray] = []
    version: int | None = None
    for start in range(0, len(chunks), batch):
        vectors, answered = embed([c.text for c in chunks[start : start + batch]])
        if version is not None and answered != version:
            raise IngestError(
                f"the embedder changed from v{version} to v{answered} during ingestion; run it again once one "
                "version serves"
            )
        version = answered
        parts.append(vectors)
        done = min(start + batch, len(chunks))
        if done == len(chunks) or (start // batch) % 10 == 0:
            progress(f"embedded {done}/{len(chunks)} chunks")
    assert version is not None  # chunk_corpus never returns an empty list for a non-empty corpus
    return np.vstack(parts), version


def ingest(
    root: Path,
    p: Policy,
    model: str,
    out: Path,
    embed: EmbedBatch,
    generator_version: int,
    progress: Progress = print,
) -> RagConfig:
    """Build the RAG version of `model` into `out` (replaced only once the new one is complete)."""
    r = p.for_model(model).rag
    corpus = read_corpus(root, r.corpus)
    chunks = chunk_corpus(corpus, r.chunk_max_chars)
    progress(f"corpus {corpus.sha256[:12]}: {len(corpus.files)} files under {r.corpus}, {len(chunks)} chunks")
    vectors, embedder_version = embed_chunks(chunks, embed, p.serving.max_batch_size, progress)
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    sha = write_index(tmp, chunks, vectors)
    config = RagConfig(
        name=model,
        embedder=Pinned(r.embedder_model, embedder_version),
        generator=Pinned(r.generator_model, generator_version),
        prompt_template=PROMPT_TEMPLATE,
        top_k=r.top_k,
        prompt_context_chars=r.prompt_context_chars,
        answer_new_tokens=r.answer_new_tokens,
        chunk_max_chars=r.chunk_max_chars,
        corpus=list(r.corpus),
        corpus_sha256=corpus.sha256,
        corpus_files=len(corpus.files),
        chunks=len(chunks),
        dim=int(vectors.shape[1]),
        index_sha256=sha,
    )
    config.write(tmp)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    progress(f"wrote {out}: index {sha[:12]}, embedder {r.embedder_model} v{embedder_version}")
    return config
