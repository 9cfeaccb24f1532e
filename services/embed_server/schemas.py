"""Request and response of `POST /embed`: limits from the policy's `serving` section (a bad request: HTTP 400)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from core.policy import policy


class EmbedRequest(BaseModel):
    """`{"texts": ["...", ...]}`: 1..serving.max_batch_size non-empty texts of at most serving.max_text_chars."""

    model_config = ConfigDict(extra="forbid")

    texts: list[str] = Field(description="Texts to embed, one vector each, in order")

    @field_validator("texts")
    @classmethod
    def _texts(cls, texts: list[str]) -> list[str]:
        s = policy().serving
        if not 1 <= len(texts) <= s.max_batch_size:
            raise ValueError(f"texts has {len(texts)} items; send 1..{s.max_batch_size}")
        for i, text in enumerate(texts):
            if not text.strip():
                raise ValueError(f"texts[{i}] is empty or whitespace")
            if len(text) > s.max_text_chars:
                raise ValueError(f"texts[{i}] has {len(text)} characters, at most {s.max_text_chars}")
        return texts


class EmbedResponse(BaseModel):
    model_name: str
    model_version: int
    dim: int = Field(description="Dimensions of each embedding (L2-normalised: cosine = dot product)")
    embeddings: list[list[float]]

    model_config = ConfigDict(protected_namespaces=())
    multipart_fields: ClassVar[set[str]] = set()  # as ClassifyResponse: spares pydantic's missing-attribute path
