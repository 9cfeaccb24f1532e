"""The embed server: one BentoML service serving ONE version of a catalogue `embed` model on ONNX Runtime.

    MLP_MODEL_NAME=minilm-embedder MLP_MODEL_DIR=build/models/fp32 \
        bentoml serve services.embed_server.service:EmbedService --port 13051 --host 127.0.0.1

- `POST /embed` `{"texts": [...]}` -> one L2-normalised sentence embedding per text (MiniLM: 384 dimensions), the
  same encoder and pooling as the classifier's (`services/model_runtime/classifier.py`); limits from `serving`.
- `/livez`, `/readyz` (after load and warm-up), `/metrics` (BentoML's request metrics, `endpoint="/embed"`).
- Every response carries `X-Model-Version`: a RAG server checks it against the version its index was built with.

A version is a packaged classifier folder registered under the embed model's name (`mlp rag register-embedder`):
the embedder is its encoder, the head is not used.
"""

from __future__ import annotations

import logging

import bentoml

from core import contracts
from core.policy import policy
from services.embed_server.schemas import EmbedRequest, EmbedResponse
from services.model_server.options import served_model_name, service_options
from services.model_server.version_header import VersionHeaderMiddleware

logger = logging.getLogger("mlp.embed_server")

EMBED_ROUTE = contracts.server_route("embed")


_model_name = served_model_name("embed")
_policy = policy().for_model(_model_name)


@bentoml.service(**service_options("embed-server", _policy.serving.workers, _policy))
class EmbedService:
    def __init__(self) -> None:
        from services.model_server.loading import load_from_env

        loaded = load_from_env(_model_name)
        self.classifier = loaded.classifier
        self.version = loaded.version
        VersionHeaderMiddleware.version = loaded.version
        self._ready = True

    def __is_ready__(self) -> bool:
        return getattr(self, "_ready", False)

    @bentoml.api(route=EMBED_ROUTE, input_spec=EmbedRequest, output_spec=EmbedResponse)
    def embed(self, texts: list[str]) -> EmbedResponse:
        """Sentence embeddings, in the order of the texts (a sync API: BentoML runs it in its thread pool)."""
        vectors = self.classifier.embed(texts)
        return EmbedResponse(
            model_name=_model_name,
            model_version=self.version,
            dim=int(vectors.shape[1]),
            embeddings=vectors.round(6).tolist(),
        )


EmbedService.add_asgi_middleware(VersionHeaderMiddleware)  # type: ignore[attr-defined]
