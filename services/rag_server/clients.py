"""The RAG server's clients of the servers its version pins: the embedder's `/embed`, the generator's `/generate`.

Each call has the policy's budget (`rag.embed_timeout_seconds`, `rag.generate_timeout_seconds`) and reports the
version that answered (`X-Model-Version`), which the pipeline compares with the pinned one. A failure becomes the
pipeline's EmbedderUnavailable (the request fails) or GeneratorUnavailable (the answer falls back to retrieval).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import numpy as np

from core import contracts
from services.model_runtime.rag import Embedded, EmbedderUnavailable, Generated, GeneratorUnavailable


def _client(base_url: str, host: str, timeout: float) -> httpx.Client:
    headers = {"Host": host} if host else {}
    return httpx.Client(base_url=base_url, headers=headers, timeout=timeout)


def _version(response: httpx.Response) -> int:
    return int(response.headers.get(contracts.VERSION_HEADER, "-1"))


class HttpEmbedder:
    def __init__(self, base_url: str, host: str, timeout: float) -> None:
        self.base_url = base_url
        self.http = _client(base_url, host, timeout)

    def __call__(self, text: str) -> Embedded:
        try:
            r = self.http.post(contracts.server_route("embed"), json={"texts": [text]})
            r.raise_for_status()
            body: dict[str, Any] = r.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise EmbedderUnavailable(
                f"the embedder at {self.base_url} did not answer ({type(exc).__name__}: {exc!s:.200}); "
                "see runbooks/rag-answers-degraded.md"
            ) from exc
        return Embedded(np.asarray(body["embeddings"][0], dtype=np.float32), _version(r))


class HttpGenerator:
    """At most `in_flight` generations at once from this server, and `budget` seconds per answer in all: waiting for a
    free slot and the generation together. The generator decodes one request at a time, so a request sent to a busy
    one only queues there; past the budget the answer falls back instead of outliving the gateway's timeout."""

    def __init__(self, base_url: str, host: str, budget: float, in_flight: int) -> None:
        self.base_url = base_url
        self.budget = budget
        self.slots = threading.BoundedSemaphore(in_flight)
        self.http = _client(base_url, host, budget)

    def __call__(self, prompt: str, max_tokens: int) -> Generated:
        started = time.monotonic()
        if not self.slots.acquire(timeout=self.budget):
            raise GeneratorUnavailable(
                f"the generator was busy with other answers for the whole {self.budget:g}s budget"
            )
        try:
            left = max(self.budget - (time.monotonic() - started), 0.05)
            route = contracts.server_route("generate")
            r = self.http.post(route, json={"prompt": prompt, "max_tokens": max_tokens}, timeout=left)
            r.raise_for_status()
            body: dict[str, Any] = r.json()
        except httpx.TimeoutException as exc:
            raise GeneratorUnavailable(f"the generator did not answer within the {self.budget:g}s budget") from exc
        except (httpx.HTTPError, ValueError) as exc:
            raise GeneratorUnavailable(
                f"the generator at {self.base_url} did not answer ({type(exc).__name__}: {exc!s:.160})"
            ) from exc
        finally:
            self.slots.release()
        return Generated(str(body["text"]), _version(r), int(body["usage"]["completion_tokens"]))
