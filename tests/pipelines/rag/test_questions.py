"""The RAG model's labelled question set (pipelines/data/rag_eval/questions.jsonl) still matches the Markdown it cites.

Each question names the one file under `runbooks/` or `docs/` that answers it, the heading of the section that
holds the answer, and 1-3 key facts copied verbatim from that section. When a runbook or doc is renamed, a
heading changes or a sentence is rewritten, the entry goes stale and the release gate's recall@k, MRR and
groundedness would be measured against an answer that no longer exists: these tests name the entry instead.
Standard library only; the Markdown is parsed here (ATX headings, fenced code blocks skipped).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
QUESTIONS_FILE = REPO_ROOT / "pipelines" / "data" / "rag_eval" / "questions.jsonl"
CORPUS_FOLDERS = ("runbooks", "docs")
FIELDS = {"id", "question", "source", "section", "key_facts"}
MIN_RUNBOOKS_COVERED = 15
MAX_QUESTIONS_PER_RUNBOOK = 2
MAX_FACT_WORDS = 8
MIN_SINGLE_WORD_FACT_CHARS = 10  # a one-word fact must be a distinctive identifier (metric, path, alert), not "model"
MAX_COPIED_WORDS = 5  # a question may share at most this many consecutive words with its section: paraphrased

WORD = re.compile(r"[\w.:/<>='-]+")
HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")


def normalise(text: str) -> str:
    """Case-insensitive, whitespace-normalised form used for every comparison."""
    return " ".join(text.split()).lower()


def load_questions() -> list[dict[str, Any]]:
    records = []
    for number, line in enumerate(QUESTIONS_FILE.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as error:
            raise ValueError(f"{QUESTIONS_FILE.name} line {number} is not JSON: {error}") from error
    return records


QUESTIONS = load_questions()
IDS = [str(record.get("id", f"line-{index}")) for index, record in enumerate(QUESTIONS, start=1)]


@dataclass(frozen=True)
class Section:
    heading: str
    level: int
    text: str  # from the heading line to the next heading of the same or a higher level (code blocks included)


@cache
def sections(relative_path: str) -> tuple[Section, ...]:
    lines = (REPO_ROOT / relative_path).read_text(encoding="utf-8").splitlines()
    headings: list[tuple[int, int, str]] = []  # (line index, level, text)
    fence: str | None = None
    for index, line in enumerate(lines):
        opening = FENCE.match(line)
        if fence is not None:
            if opening and opening.group(1)[0] == fence[0] and len(opening.group(1)) >= len(fence):
                fence = None
            continue
        if opening:
            fence = opening.group(1)
            continue
        match = HEADING.match(line)
        if match:
            headings.append((index, len(match.group(1)), match.group(2).strip()))
    found = []
    for position, (start, level, text) in enumerate(headings):
        end = next((other for other, lvl, _ in headings[position + 1 :] if lvl <= level), len(lines))
        found.append(Section(text, level, "\n".join(lines[start:end])))
    return tuple(found)


def section_of(record: dict[str, Any]) -> Section:
    matches = [s for s in sections(record["source"]) if s.heading == record["section"]]
    assert matches, (
        f"{record['id']}: no heading '{record['section']}' in {record['source']}; "
        f"its headings: {[s.heading for s in sections(record['source'])]}"
    )
    assert len(matches) == 1, f"{record['id']}: heading '{record['section']}' is not unique in {record['source']}"
    return matches[0]


def strip_markup(text: str) -> str:
    return text.replace("`", "").replace("*", "")


def words(text: str) -> list[str]:
    return WORD.findall(strip_markup(text).lower())


@pytest.mark.parametrize("record", QUESTIONS, ids=IDS)
def test_record_has_the_documented_shape(record: dict[str, Any]) -> None:
    assert set(record) == FIELDS, f"fields {sorted(record)}, expected {sorted(FIELDS)}"
    assert re.fullmatch(r"q\d{2,}", record["id"]), f"id {record['id']!r} is not q01, q02, ..."
    for field in ("question", "source", "section"):
        assert isinstance(record[field], str) and record[field].strip(), f"{field} is empty"
    facts = record["key_facts"]
    assert isinstance(facts, list) and 1 <= len(facts) <= 3, "key_facts must hold 1-3 facts"
    for fact in facts:
        assert isinstance(fact, str) and fact.strip(), "a key fact is empty"
        assert "`" not in fact and "**" not in fact, f"key fact {fact!r} carries Markdown markup"
        words = fact.split()
        assert len(words) <= MAX_FACT_WORDS, f"key fact {fact!r} is longer than {MAX_FACT_WORDS} words"
        if len(words) == 1:
            assert len(fact) >= MIN_SINGLE_WORD_FACT_CHARS, f"key fact {fact!r} is too short to be distinctive"


@pytest.mark.parametrize("record", QUESTIONS, ids=IDS)
def test_source_is_a_markdown_file_under_runbooks_or_docs(record: dict[str, Any]) -> None:
    source = Path(record["source"])
    assert not source.is_absolute() and ".." not in source.parts, f"{source} is not relative to the repository root"
    assert source.parts[0] in CORPUS_FOLDERS, f"{source} is not under {' or '.join(CORPUS_FOLDERS)}/"
    assert source.suffix == ".md", f"{source} is not a Markdown file"
    assert (REPO_ROOT / source).is_file(), f"{source} does not exist"


@pytest.mark.parametrize("record", QUESTIONS, ids=IDS)
def test_section_is_a_heading_of_the_source(record: dict[str, Any]) -> None:
    section_of(record)


@pytest.mark.parametrize("record", QUESTIONS, ids=IDS)
def test_every_key_fact_is_in_the_sections_text(record: dict[str, Any]) -> None:
    text = normalise(section_of(record).text)
    missing = [fact for fact in record["key_facts"] if normalise(fact) not in text]
    assert not missing, f"not in section '{record['section']}' of {record['source']}: {missing}"


@pytest.mark.parametrize("record", QUESTIONS, ids=IDS)
def test_question_does_not_contain_its_heading(record: dict[str, Any]) -> None:
    question = normalise(record["question"])
    for heading in {normalise(record["section"]), normalise(strip_markup(record["section"]))}:
        assert heading not in question, f"the question contains its section heading {record['section']!r}"


@pytest.mark.parametrize("record", QUESTIONS, ids=IDS)
def test_question_is_paraphrased_not_copied_from_its_section(record: dict[str, Any]) -> None:
    question = words(record["question"])
    text = " " + " ".join(words(section_of(record).text)) + " "
    run = MAX_COPIED_WORDS + 1
    copied = [
        " ".join(question[i : i + run])
        for i in range(len(question) - run + 1)
        if " " + " ".join(question[i : i + run]) + " " in text
    ]
    assert not copied, f"the question copies {run} or more consecutive words of its section: {copied}"


def test_ids_are_unique() -> None:
    duplicates = [key for key, count in Counter(IDS).items() if count > 1]
    assert not duplicates, f"duplicate ids: {duplicates}"


def test_questions_are_unique() -> None:
    counts = Counter(normalise(record["question"]) for record in QUESTIONS)
    duplicates = [question for question, count in counts.items() if count > 1]
    assert not duplicates, f"duplicate questions: {duplicates}"


def test_the_set_covers_enough_runbooks_and_no_runbook_dominates() -> None:
    per_runbook = Counter(r["source"] for r in QUESTIONS if r["source"].startswith("runbooks/"))
    assert len(per_runbook) >= MIN_RUNBOOKS_COVERED, (
        f"{len(per_runbook)} runbooks covered, at least {MIN_RUNBOOKS_COVERED} needed"
    )
    crowded = {source: count for source, count in per_runbook.items() if count > MAX_QUESTIONS_PER_RUNBOOK}
    assert not crowded, f"more than {MAX_QUESTIONS_PER_RUNBOOK} questions on one runbook: {crowded}"
