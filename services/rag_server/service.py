"""The RAG server: one BentoML service serving ONE version of a catalogue `rag` model.

    MLP_MODEL_NAME=oncall-rag MLP_MODEL_DIR=build/rag/oncall-rag MLP_EMBEDDER_URL=http://127.0.0.1:13051 \
        MLP_GENERATOR_URL=http://127.0.0.1:13050 \
        bentoml serve services.rag_server.service:RagService --port 13052 --host 127.0.0.1

- `POST /rag` `{"question": "...", "generate": true}` -> the answer and its citations (file, section, score,
  excerpt), the versions that answered and each step's time. The question is embedded by the embedder the version
  pins, the top-k chunks are retrieved from its index, and the pinned generator writes the answer from them.
- The generator down, over `rag.generate_timeout_seconds`, or serving another version: HTTP 200 with
  `mode: retrieval_only` and the reason. The embedder down or serving another version: HTTP 503 naming it (nothing
  can be retrieved). A bad question: HTTP 400 naming the limit.
- `/livez`, `/readyz` (the index loaded), `/metrics` (BentoML's request metrics with `endpoint="/rag"`, and
  `mlp_rag_stage_seconds{stage}`, `mlp_rag_answers_total{mode}`). `X-Model-Version` on every answer.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any

import bentoml
from starlette.responses import JSONResponse

from core import contracts, env
from core.policy import policy
from services.model_runtime.rag import Answer, RagConfig
from services.model_server.inference_log import Record, from_env
from services.model_server.options import service_options
from services.model_server.version_header import VersionHeaderMiddleware
from services.rag_server.schemas import CitationOut, RagRequest, RagResponse, served_model_name, settings

logger = logging.getLogger("mlp.rag_server")


def answer_record(out: Answer, config: RagConfig) -> dict[str, Any]:
    """What the inference log keeps of an answer beside the question (`text`), its mode (`label`) and its best
    citation's score (`confidence`): enough to audit what was cited and to replay the question on another version."""
    return {
        "answer": out.answer,
        "fallback_reason": out.fallback_reason,
        "citations": [{"source": c.source, "section": c.section, "score": c.score} for c in out.citations],
        "embedder_version": config.embedder.version,
        "generator_version": config.generator.version,
        "completion_tokens": out.completion_tokens,
        "timings_ms": {k: round(v, 2) for k, v in out.timings_ms.items()},
    }


RAG_ROUTE = contracts.server_route("rag")

_model_name = served_model_name()
_policy = policy().for_model(_model_name)


# One worker, many threads: a question spends its time waiting on the embedder and the generator.
@bentoml.service(**service_options("rag-server", 1, _policy), threads=_policy.rag.server_threads)
class RagService:
    def __init__(self) -> None:
        from services.model_runtime.rag import RagPipeline
        from services.rag_server.clients import HttpEmbedder, HttpGenerator
        from services.rag_server.loading import load_rag
        from services.rag_server.metrics import rag_metrics

        r = settings()
        loaded = load_rag(_model_name)
        self.config = loaded.config
        self.pipeline = RagPipeline(
            loaded.config,
            loaded.store,
            HttpEmbedder(env.EMBEDDER_URL.get(), env.EMBEDDER_HOST.get(), r.embed_timeout_seconds),
            HttpGenerator(
                env.GENERATOR_URL.get(),
                env.GENERATOR_HOST.get(),
                r.generate_timeout_seconds,
                r.max_generations_in_flight,
            ),
        )
        self.metrics = rag_metrics()
        self.labels = (_model_name, str(loaded.version))
        self.metrics.loaded.labels(*self.labels).set(1)
        self.metrics.started.labels(*self.labels).set_to_current_time()
        dropped = self.metrics.log_dropped
        self.log = from_env(
            _model_name,
            loaded.version,
            _policy.serving,
            on_drop=lambda reason, n: dropped.labels(*self.labels, reason).inc(n),
        )
        VersionHeaderMiddleware.version = loaded.version
        self._ready = True

    @bentoml.on_shutdown
    def _shutdown(self) -> None:
        if self.log is not None:
            self.log.close()  # flushes what is queued

    def __is_ready__(self) -> bool:
        return getattr(self, "_ready", False)

    @bentoml.api(route=RAG_ROUTE, input_spec=RagRequest, output_spec=RagResponse)
    def rag(self, question: str, ctx: bentoml.Context, generate: bool = True) -> RagResponse | JSONResponse:
        """Retrieve, then generate (a sync API: BentoML runs it in one of its threads)."""
        from services.model_runtime.rag import EmbedderUnavailable

        m = self.metrics
        request_id = ctx.request.headers.get("x-request-id") or uuid.uuid4().hex
        try:
            out = self.pipeline.answer(question, generate=generate)
        except EmbedderUnavailable as exc:
            m.answers.labels(*self.labels, "failed").inc()
            logger.warning("no answer: %s", exc)
            self._log(request_id, question, "failed", 0.0, {"error": str(exc)})
            ctx.response.status_code = 503  # with a Context argument, BentoML answers with the context's status,
            # not the returned response's
            return JSONResponse({"error": str(exc)}, status_code=503)
        for stage, ms in out.timings_ms.items():
            m.stage.labels(*self.labels, stage).observe(ms / 1000)
        m.answers.labels(*self.labels, out.mode).inc()
        top = out.citations[0].score if out.citations else 0.0
        self._log(request_id, question, out.mode, top, answer_record(out, self.config))
        return RagResponse(
            model_name=_model_name,
            model_version=int(self.labels[1]),
            mode=out.mode,
            answer=out.answer,
            fallback_reason=out.fallback_reason,
            citations=[CitationOut(**c.__dict__) for c in out.citations],
            embedder_version=self.config.embedder.version,
            generator_version=self.config.generator.version,
            completion_tokens=out.completion_tokens,
            timings_ms={k: round(v, 2) for k, v in out.timings_ms.items()},
        )

    def _log(self, request_id: str, question: str, mode: str, top_score: float, extra: dict[str, Any]) -> None:
        """The question and how it was answered, in the inference log (never on the request's time: a queue)."""
        if self.log is not None:
            self.log.submit([Record(datetime.now(UTC), request_id, question, mode, top_score, {}, extra=extra)])


RagService.add_asgi_middleware(VersionHeaderMiddleware)  # type: ignore[attr-defined]
