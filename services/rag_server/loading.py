"""Load the ONE RAG version a RAG server serves: its folder (registry or MLP_MODEL_DIR), what it pins, and its index
in the vector store (a Qdrant server when MLP_QDRANT_URL is set, else the embedded engine in a temporary folder)."""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from core import env
from services.model_runtime.rag import RagConfig, load_index
from services.model_runtime.vector_store import StoreError, VectorStore
from services.model_runtime.vector_stores import StoreSettings, open_store
from services.model_server.loading import ModelLoadError, version_dir_from_env

logger = logging.getLogger("mlp.rag_server")


@dataclass(frozen=True)
class LoadedRag:
    version: int
    folder: Path
    config: RagConfig
    store: VectorStore


def collection_name(model: str, version: int, config: RagConfig) -> str:
    """One collection per version and index content: a server never mixes two versions' points."""
    return f"{model}-v{version}-{config.index_sha256[:12]}"


def load_rag(model: str) -> LoadedRag:
    started = time.monotonic()
    folder, version = version_dir_from_env(model)
    try:
        config = RagConfig.read(folder)
    except ValueError as exc:
        raise ModelLoadError(str(exc)) from exc
    settings = StoreSettings(
        workdir=Path(tempfile.mkdtemp(prefix="mlp-rag-index-")),
        collection=collection_name(model, version, config),
        dim=config.dim,
        url=env.QDRANT_URL.get(),
        api_key=env.QDRANT_API_KEY.get(),
    )
    try:
        store = open_store(settings)
        load_index(folder, config, store)
    except (StoreError, ValueError, OSError) as exc:
        raise ModelLoadError(f"cannot load the index of {model} v{version}: {exc}") from exc
    logger.info(
        "serving %s v%s: %d chunks (embedder %s v%d, generator %s v%d) in %s, loaded in %.1fs",
        model, version, config.chunks, config.embedder.model, config.embedder.version, config.generator.model,
        config.generator.version, settings.url or "the embedded Qdrant engine", time.monotonic() - started,
    )  # fmt: skip
    return LoadedRag(version, folder, config, store)
