"""Both vector stores behind one interface: the embedded Qdrant engine and the Qdrant client (its local mode, the
same calls a Qdrant server gets). Each is checked against exact cosine ranking on the same points."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from services.model_runtime.qdrant_edge_store import EdgeStore
from services.model_runtime.qdrant_server_store import ServerStore
from services.model_runtime.vector_store import Chunk, StoreError, VectorStore
from services.model_runtime.vector_stores import StoreSettings, open_store

DIM = 16
Opener = Callable[[Path], VectorStore]
OPENERS: dict[str, Opener] = {
    "qdrant-edge": lambda path: EdgeStore.open(path / "shard", DIM),
    "qdrant-client": lambda path: ServerStore.local(path / "client", "test", DIM),
}


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def corpus(n: int, seed: int = 7) -> tuple[list[Chunk], np.ndarray]:
    rng = np.random.default_rng(seed)
    chunks = [Chunk(i, f"runbooks/r{i % 5}.md", f"Section {i}", f"text of chunk {i}") for i in range(n)]
    return chunks, unit(rng.normal(size=(n, DIM)))


@pytest.fixture(params=sorted(OPENERS))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VectorStore]:
    s = OPENERS[request.param](tmp_path)
    yield s
    s.close()


def test_search_returns_the_exact_cosine_top_k_best_first_with_the_chunk(store: VectorStore) -> None:
    chunks, vectors = corpus(300)
    store.add(chunks, vectors)
    assert store.count() == 300
    query = unit(np.random.default_rng(1).normal(size=(1, DIM)))[0]
    hits = store.search(query, 5)
    exact = np.argsort(-(vectors @ query))[:5]
    assert [h.chunk.id for h in hits] == exact.tolist()
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert hits[0].score == pytest.approx(float(vectors[exact[0]] @ query), abs=1e-4)
    assert hits[0].chunk == chunks[exact[0]]  # the payload comes back as the chunk it was


def test_adding_a_chunk_again_replaces_it(store: VectorStore) -> None:
    chunks, vectors = corpus(10)
    store.add(chunks, vectors)
    moved = Chunk(3, "docs/new.md", "New", "new text")
    store.add([moved], vectors[[0]])
    assert store.count() == 10
    top = store.search(vectors[0], 2)
    assert {h.chunk.id for h in top} == {0, 3} and moved in {h.chunk for h in top}


def test_rows_that_do_not_match_the_chunks_are_refused(store: VectorStore) -> None:
    chunks, vectors = corpus(4)
    with pytest.raises(StoreError, match="expected 4 embeddings of 16 dimensions"):
        store.add(chunks, vectors[:3])
    assert store.count() == 0


def test_the_embedded_shard_is_kept_on_disk_and_reopened(tmp_path: Path) -> None:
    chunks, vectors = corpus(50)
    first = EdgeStore.open(tmp_path / "shard", DIM)
    first.add(chunks, vectors)
    first.close()
    again = EdgeStore.open(tmp_path / "shard", DIM)
    assert again.count() == 50 and again.search(vectors[7], 1)[0].chunk.id == 7
    again.close()


def test_the_factory_opens_the_embedded_engine_without_a_server_url(tmp_path: Path) -> None:
    s = open_store(StoreSettings(workdir=tmp_path, collection="c", dim=DIM))
    assert isinstance(s, EdgeStore) and (tmp_path / "c").is_dir()
    s.close()


def test_an_unreachable_qdrant_server_names_the_setting_to_check(tmp_path: Path) -> None:
    settings = StoreSettings(workdir=tmp_path, collection="c", dim=DIM, url="http://127.0.0.1:9")  # nothing listens
    with pytest.raises(StoreError, match="MLP_QDRANT_URL"):
        open_store(settings)
