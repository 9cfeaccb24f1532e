"""Request and response of `POST /rag`: limits from the policy's `rag` section (a bad request: HTTP 400)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from core.policy import Rag, policy
from services.model_server import options


def served_model_name() -> str:
    return options.served_model_name("rag")


def settings() -> Rag:
    return policy().for_model(served_model_name()).rag


class RagRequest(BaseModel):
    """`{"question": "...", "generate": true}`: a non-empty question of at most rag.max_question_chars; with
    `generate: false` the answer is the retrieved chunks alone (cheaper, and what the retrieval gate measures)."""

    model_config = ConfigDict(extra="forbid")

    question: str = Field(description="What the on-call engineer asks")
    generate: bool = Field(default=True, description="false: retrieve and cite only, no generated text")

    @field_validator("question")
    @classmethod
    def _question(cls, question: str) -> str:
        limit = settings().max_question_chars
        if not question.strip():
            raise ValueError("question is empty or whitespace: ask something")
        if len(question) > limit:
            raise ValueError(f"question has {len(question)} characters, at most {limit}; shorten it")
        return question.strip()


class CitationOut(BaseModel):
    rank: int = Field(description="Its number in the prompt and in the answer's [n] references")
    source: str = Field(description="Repository path of the file")
    section: str = Field(description="The heading the excerpt stands under")
    score: float = Field(description="Cosine similarity of the excerpt to the question")
    text: str


class RagResponse(BaseModel):
    model_name: str
    model_version: int
    mode: Literal["generated", "retrieval_only"]
    answer: str | None = Field(description="The generated answer; null in retrieval_only mode")
    fallback_reason: str | None = Field(description="Why there is no generated answer")
    citations: list[CitationOut]
    embedder_version: int
    generator_version: int
    completion_tokens: int = Field(description="Tokens the generator wrote (0 without a generated answer)")
    timings_ms: dict[str, float] = Field(description="embed, retrieve, generate and total, in milliseconds")

    model_config = ConfigDict(protected_namespaces=())
    multipart_fields: ClassVar[set[str]] = set()  # as ClassifyResponse: spares pydantic's missing-attribute path
