"""The MLflow pyfunc face of a RAG version, so `mlflow.pyfunc.load_model` works on one: retrieval only (an
`embedding` column of question embeddings from the pinned embedder in; the top-k sources and sections out). The
RAG server loads the folder directly and also embeds and generates."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel

from services.model_runtime.qdrant_edge_store import EdgeStore
from services.model_runtime.rag import RagConfig, load_index


class RagPyfunc(PythonModel):
    def load_context(self, context: Any) -> None:
        folder = Path(context.artifacts["model_dir"])
        self.config = RagConfig.read(folder)
        self.store = EdgeStore.open(Path(tempfile.mkdtemp(prefix="mlp-rag-pyfunc-")), self.config.dim)
        load_index(folder, self.config, self.store)

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        rows = []
        for vector in model_input["embedding"]:
            hits = self.store.search(np.asarray(vector, dtype=np.float32), self.config.top_k)
            rows.append({"sources": [h.chunk.source for h in hits], "sections": [h.chunk.section for h in hits]})
        return pd.DataFrame(rows)
