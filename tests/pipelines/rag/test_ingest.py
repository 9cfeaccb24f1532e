"""Ingestion with a stand-in embedder: the version folder it writes, and what stops it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.policy import policy
from pipelines.rag.ingest import IngestError, embed_chunks, ingest
from services.model_runtime.rag import RagConfig, index_sha256, read_index
from services.model_runtime.vector_store import Chunk


def fake_embed(version_of_call: list[int]) -> object:
    calls = iter(version_of_call)

    def embed(texts: list[str]) -> tuple[np.ndarray, int]:
        rows = np.array([[len(t), 1.0, 0.0] for t in texts], dtype=np.float32)
        return rows / np.linalg.norm(rows, axis=1, keepdims=True), next(calls)

    return embed


def test_an_embedder_changing_version_midway_stops_ingestion() -> None:
    chunks = [Chunk(i, "a.md", "s", f"t{i}") for i in range(5)]
    with pytest.raises(IngestError, match="changed from v1 to v2 during ingestion"):
        embed_chunks(chunks, fake_embed([1, 2, 2]), 2, lambda _: None)  # type: ignore[arg-type]


def test_ingest_writes_a_complete_version_folder_with_its_pins(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    for rel in ("runbooks/one.md", "docs/two.md"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(f"# {rel}\n\n## Part\nSome text for {rel}.\n")
    out = tmp_path / "out"
    (out).mkdir()
    (out / "stale").write_text("old")
    p = policy()
    config = ingest(root, p, "oncall-rag", out, fake_embed([4] * 10), 7, lambda _: None)  # type: ignore[arg-type]
    assert RagConfig.read(out) == config
    assert config.embedder.version == 4 and config.generator.version == 7
    assert (config.embedder.model, config.generator.model) == (p.rag.embedder_model, p.rag.generator_model)
    assert config.corpus_files == 2 and config.chunks == 2 and config.dim == 3
    assert config.index_sha256 == index_sha256(out) and not (out / "stale").exists()
    chunks, vectors = read_index(out)
    assert [c.source for c in chunks] == ["docs/two.md", "runbooks/one.md"] and vectors.shape == (2, 3)
