"""The generate server: one BentoML service serving ONE packaged generator (task `generate`) on llama.cpp.

    MLP_MODEL_NAME=gemma3-270m MLP_MODEL_DIR=build/models/gemma3-270m \
        bentoml serve services.generate_server.service:GenerateService --port 13100 --host 127.0.0.1

- `POST /generate` `{"prompt": "...", "max_tokens": 32}` -> the greedy completion with its usage, time to first
  token and decode speed; limits from the policy's `generation` section (HTTP 400 naming the limit).
- One request decodes at a time (one llama.cpp context); the others wait in BentoML's thread pool, and the
  gateway's timeout bounds the wait.
- `/livez`, `/readyz` (ready after load and one warm-up generation), `/metrics`: BentoML's request metrics with
  the same `endpoint`/`http_response_code` labels as the classifier's, and TTFT, inter-token latency, tokens and
  tokens/s per request (`mlp_generate_*`), labelled `model_name` and `model_version`.
- Every response carries `X-Model-Version`.

It serves the registered version `MLP_MODEL_VERSION` names (fetched and verified like the classifier's), or a packaged
folder (`MLP_MODEL_DIR`, benchmarks and tests).
"""

from __future__ import annotations

import logging
import time

import bentoml
from starlette.responses import JSONResponse

from core import contracts
from core.policy import policy
from services.generate_server.schemas import GenerateRequest, GenerateResponse, Usage, limits, served_model_name
from services.model_server.options import service_options
from services.model_server.version_header import VersionHeaderMiddleware

logger = logging.getLogger("mlp.generate_server")

GENERATE_ROUTE = contracts.server_route("generate")
WARMUP_PROMPT = "A warm-up sentence to load the weights"

_model_name = served_model_name()
_policy = policy().for_model(_model_name)


# One llama.cpp context per server: more replicas, not more workers.
@bentoml.service(**service_options("generate-server", 1, _policy))
class GenerateService:
    def __init__(self) -> None:
        from services.generate_server.loading import load_generator
        from services.generate_server.metrics import generate_metrics

        started = time.monotonic()
        self.generator, version = load_generator(_policy.generation, _model_name)
        self.generator.generate(WARMUP_PROMPT, 2)
        self.metrics = generate_metrics()
        self.labels = (_model_name, str(version))
        self.metrics.loaded.labels(*self.labels).set(1)
        self.metrics.started.labels(*self.labels).set_to_current_time()
        VersionHeaderMiddleware.version = version
        logger.info(
            "serving %s v%s (%s, llama.cpp) from %s; loaded and warmed up in %.1fs",
            _model_name, version, self.generator.config.name, self.generator.model_dir, time.monotonic() - started,
        )  # fmt: skip
        self._ready = True

    def __is_ready__(self) -> bool:
        return getattr(self, "_ready", False)

    @bentoml.api(route=GENERATE_ROUTE, input_spec=GenerateRequest, output_spec=GenerateResponse)
    def generate(self, prompt: str, max_tokens: int | None = None) -> GenerateResponse | JSONResponse:
        """Greedy completion of the prompt (a sync API: BentoML runs it in its thread pool)."""
        from services.model_runtime.generator import PromptTooLong

        try:
            out = self.generator.generate(prompt, max_tokens or limits().default_new_tokens)
        except PromptTooLong as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        m = self.metrics
        m.ttft.labels(*self.labels).observe(out.ttft_seconds)
        gaps = m.inter_token.labels(*self.labels)
        for gap in out.inter_token_seconds:
            gaps.observe(gap)
        m.tokens.labels(*self.labels, "prompt").inc(out.prompt_tokens)
        m.tokens.labels(*self.labels, "completion").inc(out.completion_tokens)
        if out.completion_tokens > 1:
            m.tokens_per_second.labels(*self.labels).observe(out.tokens_per_second)
        return GenerateResponse(
            model_name=_model_name,
            model_version=int(self.labels[1]),
            text=out.text,
            finish_reason=out.finish_reason,
            usage=Usage(prompt_tokens=out.prompt_tokens, completion_tokens=out.completion_tokens),
            ttft_ms=out.ttft_seconds * 1000,
            tokens_per_second=out.tokens_per_second,
        )


GenerateService.add_asgi_middleware(VersionHeaderMiddleware)  # type: ignore[attr-defined]
