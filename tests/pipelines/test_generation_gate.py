"""The generate task's gate: the shipped questions, how a choice is scored, and each criterion's judgement.

Measuring a real model is tests/services/generate_server's; here the scorer and the measures are given, so each
criterion's threshold is exercised on both sides.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from pathlib import Path

import pytest

from core.policy import policy
from pipelines.generation_gate import (
    QUESTIONS,
    GenerationMeasures,
    Question,
    choice_accuracy,
    judge,
    read_questions,
)


def generator_policy():  # type: ignore[no-untyped-def]
    (name,) = [m.name for m in policy().models if m.task == "generate"]
    return policy().for_model(name)


def test_the_shipped_questions_are_well_formed_and_their_answers_spread_over_the_positions() -> None:
    questions = read_questions()
    assert len(questions) >= 40
    assert all(len(q.choices) == 4 and len(set(q.choices)) == 4 for q in questions)
    assert len({q.prompt for q in questions}) == len(questions)
    # A model that always picks one position must not score well: no position holds most answers.
    positions = Counter(q.answer for q in questions)
    assert max(positions.values()) <= len(questions) / 2, positions


def test_a_question_whose_answer_is_not_a_choice_is_refused_naming_it(tmp_path: Path) -> None:
    raw = json.loads(QUESTIONS.read_text())
    raw["questions"][3]["answer"] = 4
    path = tmp_path / "questions.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(ValueError, match=raw["questions"][3]["prompt"]):
        read_questions(path)


def test_the_choice_scored_highest_is_the_models_answer() -> None:
    questions = [
        Question("The sky is", ["blue", "green", "loud"], 0),
        Question("Two and two make", ["three", "four", "five"], 1),
        Question("Ice is", ["hot", "cold", "wet"], 1),
    ]
    # A scorer that likes long words: it picks green, three and cold, so only the last is right.
    seen: list[tuple[str, str]] = []

    def score(prompt: str, continuation: str) -> float:
        seen.append((prompt, continuation))
        return float(len(continuation))

    accuracy, misses = choice_accuracy(score, questions)
    assert misses == ["The sky is", "Two and two make"]
    assert accuracy == pytest.approx(1 / 3)
    # Every choice is scored as a continuation after a space, as the model would write it.
    assert ("The sky is", " blue") in seen and len(seen) == 9


def measures(**over: object) -> GenerationMeasures:
    g = generator_policy().generation
    base = GenerationMeasures(
        questions=40,
        choice_accuracy=g.gate_min_choice_accuracy,
        chance=0.25,
        misses=[],
        prompts=10,
        ttft_p50_ms=g.gate_max_ttft_p95_ms / 2,
        ttft_p95_ms=g.gate_max_ttft_p95_ms,
        tokens_per_second=g.gate_min_tokens_per_second,
        inter_token_p95_ms=10.0,
    )
    return dataclasses.replace(base, **over)  # type: ignore[arg-type]


def test_measures_exactly_at_the_thresholds_pass() -> None:
    assert all(c.passed for c in judge(measures(), generator_policy()))


@pytest.mark.parametrize(
    ("field", "factor", "criterion"),
    [
        ("choice_accuracy", 0.9, "choice accuracy"),
        ("ttft_p95_ms", 1.1, "time to first token"),
        ("tokens_per_second", 0.9, "decode speed"),
    ],
)
def test_each_criterion_fails_on_its_own_side_of_the_threshold(field: str, factor: float, criterion: str) -> None:
    m = measures()
    worse = dataclasses.replace(m, **{field: getattr(m, field) * factor})
    failed = [c.name for c in judge(worse, generator_policy()) if not c.passed]
    assert len(failed) == 1 and failed[0].startswith(criterion)
