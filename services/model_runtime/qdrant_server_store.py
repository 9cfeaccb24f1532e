"""A Qdrant server (the cluster's) as a `VectorStore`, through `qdrant-client`. The client's local mode (`path=`)
runs the same calls without a server: what the tests exercise this module with."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from core import env
from services.model_runtime.vector_store import UPSERT_BATCH, Chunk, Hit, StoreError, check_rows

TIMEOUT_SECONDS = 5


class ServerStore:
    def __init__(self, client: QdrantClient, collection: str, dim: int) -> None:
        self.client = client
        self.collection = collection
        self.dim = dim

    @classmethod
    def connect(cls, url: str, api_key: str, collection: str, dim: int) -> ServerStore:
        """The collection on the server at `url`, created (cosine) when it does not exist yet."""
        return cls._ready(QdrantClient(url=url, api_key=api_key or None, timeout=TIMEOUT_SECONDS), collection, dim, url)

    @classmethod
    def local(cls, path: Path, collection: str, dim: int) -> ServerStore:
        """The same calls on the client's local mode in `path` (no server)."""
        return cls._ready(QdrantClient(path=str(path)), collection, dim, str(path))

    @classmethod
    def _ready(cls, client: QdrantClient, collection: str, dim: int, where: str) -> ServerStore:
        try:
            if not client.collection_exists(collection):
                client.create_collection(
                    collection, vectors_config=models.VectorParams(size=dim, distance=models.Distance.COSINE)
                )
        except (ResponseHandlingException, UnexpectedResponse, OSError) as exc:
            raise StoreError(
                f"cannot reach the Qdrant collection {collection!r} at {where}: {exc}; check "
                f"{env.QDRANT_URL.name}, the API key and the NetworkPolicy (runbooks/rag-answers-degraded.md)"
            ) from exc
        return cls(client, collection, dim)

    def add(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        check_rows(chunks, vectors, self.dim)
        for start in range(0, len(chunks), UPSERT_BATCH):
            batch = zip(chunks[start : start + UPSERT_BATCH], vectors[start : start + UPSERT_BATCH], strict=True)
            points = [models.PointStruct(id=c.id, vector=v.tolist(), payload=c.payload()) for c, v in batch]
            self.client.upsert(self.collection, points=points, wait=True)

    def search(self, vector: np.ndarray, k: int) -> list[Hit]:
        try:
            found = self.client.query_points(self.collection, query=vector.tolist(), limit=k, with_payload=True)
        except (ResponseHandlingException, UnexpectedResponse) as exc:
            raise StoreError(f"the Qdrant query on {self.collection!r} failed: {exc}") from exc
        return [Hit(Chunk.from_payload(dict(p.payload or {})), float(p.score)) for p in found.points]

    def count(self) -> int:
        return int(self.client.count(self.collection, exact=True).count)

    def close(self) -> None:
        self.client.close()
