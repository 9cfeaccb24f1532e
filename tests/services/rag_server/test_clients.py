"""The RAG server's clients: versions read from the answers, and each failure turned into the pipeline's own error
(embedder: the question fails; generator: the answer falls back) within the budget."""

from __future__ import annotations

import time

import httpx
import pytest

from core import contracts
from services.model_runtime.rag import EmbedderUnavailable, GeneratorUnavailable
from services.rag_server.clients import HttpEmbedder, HttpGenerator


def generator(handler: httpx.MockTransport, budget: float = 0.3) -> HttpGenerator:
    gen = HttpGenerator("http://generator", "", budget, in_flight=1)
    gen.http = httpx.Client(base_url="http://generator", transport=handler)
    return gen


def answer(request: httpx.Request) -> httpx.Response:
    body = {"text": " an answer", "usage": {"completion_tokens": 3}}
    return httpx.Response(200, json=body, headers={contracts.VERSION_HEADER: "4"})


def test_a_generation_reports_the_version_that_answered() -> None:
    out = generator(httpx.MockTransport(answer))("prompt", 8)
    assert (out.text, out.version, out.completion_tokens) == (" an answer", 4, 3)


def test_a_busy_generator_slot_falls_back_once_the_budget_is_spent() -> None:
    gen = generator(httpx.MockTransport(answer), budget=0.3)
    assert gen.slots.acquire()  # another answer is being generated
    started = time.monotonic()
    with pytest.raises(GeneratorUnavailable, match=r"busy with other answers for the whole 0\.3s budget"):
        gen("prompt", 8)
    assert time.monotonic() - started >= 0.25  # it waited for the slot as long as the budget allowed
    gen.slots.release()
    assert gen("prompt", 8).version == 4  # the slot is free again


def test_a_timeout_or_an_error_of_the_generator_falls_back_and_frees_the_slot() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("read timed out", request=request)

    gen = generator(httpx.MockTransport(slow))
    with pytest.raises(GeneratorUnavailable, match=r"did not answer within the 0\.3s budget"):
        gen("prompt", 8)
    gen.http = httpx.Client(base_url="http://generator", transport=httpx.MockTransport(lambda r: httpx.Response(500)))
    with pytest.raises(GeneratorUnavailable, match="did not answer"):
        gen("prompt", 8)
    assert gen.slots.acquire(timeout=0)  # released after each failure


def test_an_unreachable_embedder_fails_the_question_naming_it_and_the_runbook() -> None:
    emb = HttpEmbedder("http://127.0.0.1:9", "", 0.5)  # nothing listens on port 9
    with pytest.raises(EmbedderUnavailable, match=r"the embedder at http://127\.0\.0\.1:9 did not answer.*rag-answers"):
        emb("a question")
