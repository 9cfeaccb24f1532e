"""`POST /classify` request validation: limits from the policy, messages that say what to do."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from core.policy import policy
from services.model_server.schemas import ClassifyRequest, ClassifyResponse, PredictionOut

LIMITS = policy().serving


def test_valid_request() -> None:
    assert ClassifyRequest.model_validate_json('{"texts": ["a fine film", "dull"]}').texts == ["a fine film", "dull"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('{"texts": []}', "texts is empty"),
        ('{"texts": ["ok", "  "]}', "texts[1] is empty or whitespace"),
        ('{"texts": "not a list"}', "valid array"),
        ('{"texts": [1, 2]}', "valid string"),
        ("{}", "Field required"),
        ('{"texts": ["ok"], "extra": 1}', "Extra inputs"),
        ('{"texts": ["ok"', "Invalid JSON"),
    ],
)
def test_invalid_requests_name_the_problem(body: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("[", r"\[").replace("]", r"\]")):
        ClassifyRequest.model_validate_json(body)


def test_batch_size_limit() -> None:
    ClassifyRequest(texts=["x"] * LIMITS.max_batch_size)
    with pytest.raises(ValidationError, match=f"at most {LIMITS.max_batch_size}; split the batch"):
        ClassifyRequest(texts=["x"] * (LIMITS.max_batch_size + 1))


def test_text_length_limit() -> None:
    ClassifyRequest(texts=["x" * LIMITS.max_text_chars])
    with pytest.raises(ValidationError, match=f"at most {LIMITS.max_text_chars}"):
        ClassifyRequest(texts=["x" * (LIMITS.max_text_chars + 1)])


def test_non_utf8_body_is_a_validation_error() -> None:
    with pytest.raises(ValidationError, match="Invalid JSON"):
        ClassifyRequest.model_validate_json(b'{"texts": ["\xff\xfe"]}')


def test_response_shape() -> None:
    resp = ClassifyResponse(
        model_name="m",
        model_version=3,
        predictions=[PredictionOut(label="positive", scores={"negative": 0.2, "positive": 0.8}, confidence=0.8)],
    )
    assert resp.model_dump() == {
        "model_name": "m",
        "model_version": 3,
        "predictions": [{"label": "positive", "scores": {"negative": 0.2, "positive": 0.8}, "confidence": 0.8}],
    }
