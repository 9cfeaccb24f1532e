"""What a RAG version's release checks before its canary: the registered build is the gated one, and what it pins
is what the local runtime serves."""

from __future__ import annotations

import pytest

from pipelines.rag.release import check_release
from pipelines.registry.register_rag import VERSION_SHA_TAG
from services.model_runtime.rag import PROMPT_TEMPLATE, Pinned, RagConfig

CONFIG = RagConfig(
    name="oncall-rag", embedder=Pinned("minilm-embedder", 1), generator=Pinned("gemma3-270m", 2),
    prompt_template=PROMPT_TEMPLATE, top_k=4, prompt_context_chars=1800, answer_new_tokens=48, chunk_max_chars=600,
    corpus=["runbooks"], corpus_sha256="c" * 64, corpus_files=3, chunks=9, dim=384, index_sha256="i" * 64,
)  # fmt: skip
SERVED = {"minilm-embedder": 1, "gemma3-270m": 2}


def gated(config: RagConfig = CONFIG) -> dict[str, str]:
    return {"gate": "passed", VERSION_SHA_TAG: config.sha256()}


def test_a_gated_build_on_the_served_models_may_go_to_a_canary() -> None:
    assert check_release(CONFIG, gated(), SERVED.get) == []


def test_the_build_fingerprint_covers_the_prompt_and_its_settings_not_only_the_index() -> None:
    other_prompt = RagConfig(**{**CONFIG.__dict__, "prompt_template": PROMPT_TEMPLATE + " Be brief."})
    fewer = RagConfig(**{**CONFIG.__dict__, "top_k": 3})
    assert len({CONFIG.sha256(), other_prompt.sha256(), fewer.sha256()}) == 3
    failures = check_release(other_prompt, gated(CONFIG), SERVED.get)  # tagged with another build's gate
    assert len(failures) == 1 and "not the one its gate passed" in failures[0]


def test_a_version_without_a_passing_gate_is_refused() -> None:
    assert "mlp rag register" in check_release(CONFIG, {VERSION_SHA_TAG: CONFIG.sha256()}, SERVED.get)[0]


@pytest.mark.parametrize(
    ("served", "expected"),
    [
        ({"minilm-embedder": 2, "gemma3-270m": 2}, "pins embedder minilm-embedder v1 but v2 is served"),
        ({"minilm-embedder": 1}, "pins generator gemma3-270m v2 but nothing is served"),
    ],
)
def test_a_version_pinned_to_models_not_served_is_refused_naming_them(served: dict[str, int], expected: str) -> None:
    failures = check_release(CONFIG, gated(), served.get)
    assert len(failures) == 1 and expected in failures[0] and "mlp rag serve VERSION" in failures[0]
