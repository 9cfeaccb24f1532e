"""The model server: one BentoML service serving ONE registered model version with ONNX Runtime.

    MLP_MODEL_VERSION=3 bentoml serve services.model_server.service:ModelService --port 13000 --host 127.0.0.1

- `POST /classify` `{"texts": [...]}` -> `{"model_name", "model_version", "predictions": [...]}`; limits
  (batch size, text length, non-empty) from the policy, violations are HTTP 400 with the reason.
- Adaptive batching: concurrent requests share one model call (services/model_server/batching.py); when the
  queue would take longer than `batching_max_latency_ms` to clear, 503 with the reason.
- `/livez`, `/readyz` (ready only after load and warm-up: `__is_ready__`), `/metrics` (BentoML's and
  `mlp_model_*`).
- Every response carries `X-Model-Version`: the gateway logs which version answered.
- Sampled inputs and outputs go to the inference log in S3, off the request path.

Imports stay light at module level (no prometheus_client, MLflow or boto3 before BentoML sets up the worker)
and PyTorch is never imported (tests/services/model_server/test_no_torch.py).
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
from services.model_server.batching import AdaptiveBatcher, Overloaded
from services.model_server.loading import LoadedModel, load_from_env
from services.model_server.mirrored import install_outermost
from services.model_server.options import service_options
from services.model_server.schemas import ClassifyRequest, ClassifyResponse, PredictionOut

logger = logging.getLogger("mlp.model_server")

VERSION_HEADER = contracts.VERSION_HEADER
PREDICT_ROUTE = contracts.PREDICT_ROUTE

_loaded: LoadedModel | None = None  # the worker's model, read by the middleware below


class ModelHeaderMiddleware:
    """Adds `X-Model-Version` to every response and counts /classify failures by error class.

    Validation errors are answered by BentoML before the API function runs, so they are counted here, where
    every status code passes.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or _loaded is None:
            await self.app(scope, receive, send)
            return
        is_predict = scope.get("path") in (PREDICT_ROUTE, contracts.PINNED_PREDICT_ROUTE)
        header = (b"x-model-version", str(_loaded.version).encode())

        async def send_with_header(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), header]}
                if is_predict and message["status"] >= 400:
                    _count_error(int(message["status"]))
            await send(message)

        await self.app(scope, receive, send_with_header)


def _count_error(status: int) -> None:
    from services.model_server.metrics import error_class, model_metrics

    cls = error_class(status)
    if cls is not None and _loaded is not None:
        model_metrics().errors.labels(_loaded.name, str(_loaded.version), cls).inc()


# The policy as this server's model sees it (catalogue overrides: its SLO buckets, limits and batching).
_policy = policy().for_model(env.MODEL_NAME.get() or policy().release.default_model)
_serving = _policy.serving


@bentoml.service(**service_options("model-server", _serving.workers, _policy))
class ModelService:
    def __init__(self) -> None:
        global _loaded
        from services.model_server.metrics import model_metrics

        self.model = load_from_env()  # raises ModelLoadError: the worker fails to start, with the reason
        _loaded = self.model
        self.metrics = model_metrics()
        self.labels = (self.model.name, str(self.model.version))
        batch_hist = self.metrics.inference_batch.labels(*self.labels)
        self.batcher = AdaptiveBatcher(
            self.model.classifier.predict_proba,
            max_batch_size=_serving.batching_max_batch_size,
            max_latency_ms=_serving.batching_max_latency_ms,
            on_batch=batch_hist.observe,
        )
        self.log = self._inference_logger()
        self.metrics.loaded.labels(*self.labels).set(1)
        self.metrics.started.labels(*self.labels).set_to_current_time()
        self._ready = True

    def _inference_logger(self) -> Any:
        from services.model_server.inference_log import from_env

        dropped = self.metrics.log_dropped
        return from_env(
            self.model.name,
            self.model.version,
            _serving,
            on_drop=lambda reason, n: dropped.labels(*self.labels, reason).inc(n),
            count_tokens=self.model.classifier.count_tokens,
        )

    def __is_ready__(self) -> bool:
        return getattr(self, "_ready", False)

    @bentoml.on_shutdown
    def _shutdown(self) -> None:
        self.batcher.close()
        if self.log is not None:
            self.log.close()  # flushes what is queued

    @bentoml.api(route=PREDICT_ROUTE, input_spec=ClassifyRequest, output_spec=ClassifyResponse)
    async def classify(self, texts: list[str], ctx: bentoml.Context) -> ClassifyResponse | JSONResponse:
        """Classify 1..max_batch_size texts (merged with concurrent requests into one model call)."""
        return await self._classify(texts, ctx)

    @bentoml.api(route=contracts.PINNED_PREDICT_ROUTE, input_spec=ClassifyRequest, output_spec=ClassifyResponse)
    async def classify_pinned(self, texts: list[str], ctx: bentoml.Context) -> ClassifyResponse | JSONResponse:
        """The same, for requests the gateway pinned to this version: counted under their own `endpoint` label."""
        return await self._classify(texts, ctx)

    async def _classify(self, texts: list[str], ctx: bentoml.Context) -> ClassifyResponse | JSONResponse:
        try:
            probabilities = await self.batcher.submit(texts)
        except Overloaded as exc:
            # With a Context argument, BentoML answers with the context's status, not the returned response's.
            ctx.response.status_code = 503
            return JSONResponse({"error": f"model server overloaded: {exc}"}, status_code=503)
        labels = self.model.classifier.labels
        predictions = []
        for row in probabilities.tolist():
            best = max(range(len(row)), key=row.__getitem__)
            scores = dict(zip(labels, row, strict=True))
            predictions.append(PredictionOut(label=labels[best], scores=scores, confidence=row[best]))
        self._observe(texts, predictions, ctx)
        return ClassifyResponse(model_name=self.model.name, model_version=self.model.version, predictions=predictions)

    def _observe(self, texts: list[str], predictions: list[PredictionOut], ctx: bentoml.Context) -> None:
        m = self.metrics
        m.inferences.labels(*self.labels).inc(len(texts))
        m.batch_size.labels(*self.labels).observe(len(texts))
        confidence = m.confidence.labels(*self.labels)
        for p in predictions:
            confidence.observe(p.confidence)
        if self.log is None:
            return
        from services.model_server.inference_log import Record

        request_id = ctx.request.headers.get("x-request-id") or uuid.uuid4().hex
        mirrored = contracts.is_mirrored_host(ctx.request.headers.get("host", ""))
        now = datetime.now(UTC)
        self.log.submit(
            [
                Record(now, request_id, t, p.label, p.confidence, p.scores, index=i, mirrored=mirrored)
                for i, (t, p) in enumerate(zip(texts, predictions, strict=True))
            ]
        )


# `bentoml.service` returns a Service wrapper; its type stub shows the decorated class instead.
ModelService.add_asgi_middleware(ModelHeaderMiddleware)  # type: ignore[attr-defined]
# A mirrored request is answered on the pinned route, outside the canary analysis (services/model_server/mirrored.py).
install_outermost()
