"""The vector store a RAG model retrieves from: one small interface, two Qdrant implementations.

- `services.model_runtime.qdrant_edge_store.EdgeStore`: the Qdrant engine embedded in the process (`qdrant-edge-py`),
  the default locally and in tests (decision 0180 has the measurements behind the choice);
- `services.model_runtime.qdrant_server_store.ServerStore`: a Qdrant server through `qdrant-client` (the cluster's,
  from its Helm chart), or the client's own local mode where no server runs.

Both hold the same points: a chunk's integer id, its L2-normalised embedding, and the chunk as payload; both score
by cosine similarity. `services.model_runtime.vector_stores.open_store` is the explicit factory: the settings
decide, never a name looked up.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import numpy as np

UPSERT_BATCH = 256  # points per write: bounded request bodies for the server, bounded memory for both


@dataclass(frozen=True)
class Chunk:
    """A piece of the corpus: the text, and where it comes from (what an answer cites)."""

    id: int
    source: str  # repository path, e.g. runbooks/canary-analysis-failed.md
    section: str  # the heading the text stands under
    text: str

    def payload(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> Chunk:
        return cls(int(payload["id"]), str(payload["source"]), str(payload["section"]), str(payload["text"]))


@dataclass(frozen=True)
class Hit:
    chunk: Chunk
    score: float  # cosine similarity to the question


class StoreError(RuntimeError):
    """The store could not be opened, written or searched; the message says what to do."""


class VectorStore(Protocol):
    def add(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        """Insert (or replace, by id) the chunks with their embeddings (one row each)."""

    def search(self, vector: np.ndarray, k: int) -> list[Hit]:
        """The `k` chunks most similar to `vector`, best first."""

    def count(self) -> int: ...

    def close(self) -> None: ...


def check_rows(chunks: Sequence[Chunk], vectors: np.ndarray, dim: int) -> None:
    if vectors.ndim != 2 or vectors.shape != (len(chunks), dim):
        raise StoreError(f"expected {len(chunks)} embeddings of {dim} dimensions, got an array of {vectors.shape}")
