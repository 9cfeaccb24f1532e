"""The explicit factory of vector stores (services/model_runtime/vector_store.py has the interface): a Qdrant
server when its URL is set, else the embedded engine. One module per implementation, chosen here by the settings."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from services.model_runtime.qdrant_edge_store import EdgeStore
from services.model_runtime.qdrant_server_store import ServerStore
from services.model_runtime.vector_store import VectorStore


@dataclass(frozen=True)
class StoreSettings:
    """Where the index lives: a Qdrant server (`url`), else the embedded engine in `workdir`."""

    workdir: Path
    collection: str
    dim: int
    url: str = ""
    api_key: str = ""


def open_store(settings: StoreSettings) -> VectorStore:
    """An empty or existing store for the settings: the Qdrant server when a URL is set, else the embedded engine."""
    if settings.url:
        return ServerStore.connect(settings.url, settings.api_key, settings.collection, settings.dim)
    return EdgeStore.open(settings.workdir / settings.collection, settings.dim)
