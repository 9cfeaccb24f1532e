"""Request and response of `POST /generate`: typed, validated, limits from the policy's `generation` section.

A request that breaks a limit fails validation, which BentoML answers with HTTP 400 and the message below.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from core.policy import Generation, policy
from services.model_server import options


def limits() -> Generation:
    """The generation limits of the model this server serves (its catalogue overrides merged)."""
    return policy().for_model(served_model_name()).generation


def served_model_name() -> str:
    return options.served_model_name("generate")


class GenerateRequest(BaseModel):
    """`{"prompt": "...", "max_tokens": 32}`: a non-empty prompt; `max_tokens` 1..max_new_tokens (default
    default_new_tokens)."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(description="Text to continue")
    max_tokens: int | None = Field(default=None, description="Most tokens to generate")

    @field_validator("prompt")
    @classmethod
    def _prompt(cls, prompt: str) -> str:
        g = limits()
        if not prompt.strip():
            raise ValueError("prompt is empty or whitespace: send text to continue")
        if len(prompt) > g.max_prompt_chars:
            raise ValueError(f"prompt has {len(prompt)} characters, at most {g.max_prompt_chars}; shorten it")
        return prompt

    @field_validator("max_tokens")
    @classmethod
    def _max_tokens(cls, max_tokens: int | None) -> int | None:
        g = limits()
        if max_tokens is not None and not 1 <= max_tokens <= g.max_new_tokens:
            raise ValueError(f"max_tokens is {max_tokens}; ask for 1..{g.max_new_tokens} tokens")
        return max_tokens


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int


class GenerateResponse(BaseModel):
    model_name: str
    model_version: int
    text: str
    finish_reason: str = Field(description="stop: the model ended the text; length: max_tokens was reached")
    usage: Usage
    ttft_ms: float = Field(description="Time to the first generated token, the prompt's evaluation included")
    tokens_per_second: float = Field(description="Decode speed after the first token")

    model_config = ConfigDict(protected_namespaces=())
    multipart_fields: ClassVar[set[str]] = set()  # as ClassifyResponse: spares pydantic's missing-attribute path
