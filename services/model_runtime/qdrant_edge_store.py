"""The embedded Qdrant engine (`qdrant-edge-py`) as a `VectorStore`: a shard in a folder, in the caller's process."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import qdrant_edge as qe

from services.model_runtime.vector_store import UPSERT_BATCH, Chunk, Hit, StoreError, check_rows


class EdgeStore:
    def __init__(self, shard: qe.EdgeShard, dim: int) -> None:
        self.shard = shard
        self.dim = dim

    @classmethod
    def open(cls, path: Path, dim: int) -> EdgeStore:
        """The shard in `path`: loaded when it holds one, else created (cosine distance, `dim` dimensions). No
        write-ahead log: a shard is written once from a version's snapshot and flushed, and without the log it takes
        less memory and disk and may be opened by more than one process (decision 0180)."""
        config = qe.EdgeConfig(
            vectors={"": qe.EdgeVectorParams(size=dim, distance=qe.Distance.Cosine)}, wal_enabled=False
        )
        try:
            if path.is_dir() and any(path.iterdir()):
                return cls(qe.EdgeShard.load(str(path)), dim)
            return cls(qe.EdgeShard.create(str(path), config), dim)
        except Exception as exc:  # the engine raises plain exceptions with its own message
            raise StoreError(f"cannot open the Qdrant shard in {path}: {exc}; delete the folder to rebuild it") from exc

    def add(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        check_rows(chunks, vectors, self.dim)
        for start in range(0, len(chunks), UPSERT_BATCH):
            points = [
                qe.Point(c.id, v.tolist(), c.payload())
                for c, v in zip(
                    chunks[start : start + UPSERT_BATCH], vectors[start : start + UPSERT_BATCH], strict=True
                )
            ]
            self.shard.update(qe.UpdateOperation.upsert_points(points))
        self.shard.optimize()  # index what was written before the first query, not during it
        self.shard.flush()

    def search(self, vector: np.ndarray, k: int) -> list[Hit]:
        request = qe.QueryRequest(limit=k, query=qe.Query.Nearest(vector.tolist()), with_payload=True)
        return [Hit(Chunk.from_payload(dict(p.payload or {})), float(p.score)) for p in self.shard.query(request)]

    def count(self) -> int:
        return int(self.shard.count(qe.CountRequest(exact=True)))

    def close(self) -> None:
        self.shard.close()
