"""The RAG gate: retrieval quality on the labelled questions, groundedness of generated answers, latency.

- **recall@k**: share of questions with a chunk of the labelled file among the top-k retrieved;
- **MRR**: mean of 1/rank of the first such chunk (0 when none is retrieved);
- **groundedness**: share of generated answers (the first `rag.gate_generated_questions` questions) whose content
  words occur in the chunks the answer was given, for at least `rag.grounded_min_token_share` of them. Content words:
  lower-cased words of 4+ letters, less a short stop list. It says whether the generator repeated its sources or
  wrote something else; it cannot tell a right paraphrase from a wrong one, and an empty answer is never grounded.
  The share of labelled key facts an answer contains is reported beside it (not gated);
- **latency**: p95 of embed + retrieve over every question, p95 of a whole answer over the generated ones.

The questions: `pipelines/data/rag_eval/questions.jsonl` (its README says how they were written).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from core.policy import REPO_ROOT, Rag
from pipelines.gate import Criterion
from services.model_runtime.rag import Answer, RagPipeline

QUESTIONS = REPO_ROOT / "pipelines" / "data" / "rag_eval" / "questions.jsonl"
WORD = re.compile(r"[a-z][a-z0-9_-]{3,}")
STOP_WORDS = (
    "that this with from have will when what which there their they them then than were been your into also only "
    "more most some such each just does done used uses using about answer question excerpt excerpts"
)
STOP = frozenset(STOP_WORDS.split())


@dataclass(frozen=True)
class LabelledQuestion:
    id: str
    question: str
    source: str
    section: str
    key_facts: list[str]


def read_questions(path: Path = QUESTIONS) -> list[LabelledQuestion]:
    out = []
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        if line.strip():
            try:
                raw = json.loads(line)
                out.append(
                    LabelledQuestion(raw["id"], raw["question"], raw["source"], raw["section"], raw["key_facts"])
                )
            except (ValueError, KeyError) as exc:
                raise ValueError(f"{path}:{n}: not a labelled question ({exc})") from exc
    if not out:
        raise ValueError(f"{path}: no questions")
    return out


def content_words(text: str) -> set[str]:
    return {w for w in WORD.findall(text.lower()) if w not in STOP}


def grounded_share(answer: str, cited_texts: Sequence[str]) -> float:
    """Share of the answer's content words found in the cited texts (0 for an answer without content words)."""
    words = content_words(re.sub(r"\[\d+\]", " ", answer))
    if not words:
        return 0.0
    sources = content_words(" ".join(cited_texts))
    return len(words & sources) / len(words)


def first_relevant_rank(sources: Sequence[str], relevant: str) -> int | None:
    """1-based rank of the first retrieved chunk from the relevant file."""
    return next((rank for rank, s in enumerate(sources, start=1) if s == relevant), None)


@dataclass
class RagMeasures:
    questions: int
    k: int
    recall_at_k: float
    mrr: float
    misses: list[str]  # ids retrieved without their file in the top k
    retrieval_p50_ms: float
    retrieval_p95_ms: float
    generated: int
    fallbacks: int  # of the generated questions, answered retrieval-only (the reasons are in `fallback_reasons`)
    groundedness: float  # share of generated answers that are grounded
    mean_grounded_token_share: float
    key_fact_recall: float
    answer_p50_ms: float
    answer_p95_ms: float
    fallback_reasons: list[str] = field(default_factory=list)


def measure(
    pipeline: RagPipeline, questions: Sequence[LabelledQuestion], generated: int, min_token_share: float
) -> RagMeasures:
    k = pipeline.config.top_k
    ranks: list[int | None] = []
    retrieval_ms: list[float] = []
    for q in questions:
        hits, timings = pipeline.retrieve(q.question)
        ranks.append(first_relevant_rank([h.chunk.source for h in hits], q.source))
        retrieval_ms.append(timings["embed"] + timings["retrieve"])
    shares: list[float] = []
    facts: list[float] = []
    answer_ms: list[float] = []
    reasons: list[str] = []
    for q in questions[:generated]:
        out: Answer = pipeline.answer(q.question)
        answer_ms.append(out.timings_ms["total"])
        if out.mode != "generated" or out.answer is None:
            reasons.append(f"{q.id}: {out.fallback_reason}")
            shares.append(0.0)
            facts.append(0.0)
            continue
        shares.append(grounded_share(out.answer, [c.text for c in out.citations]))
        facts.append(sum(f.lower() in out.answer.lower() for f in q.key_facts) / len(q.key_facts))
    n = len(answer_ms)
    return RagMeasures(
        questions=len(questions),
        k=k,
        recall_at_k=sum(r is not None for r in ranks) / len(ranks),
        mrr=float(np.mean([1 / r if r else 0.0 for r in ranks])),
        misses=[q.id for q, r in zip(questions, ranks, strict=True) if r is None],
        retrieval_p50_ms=float(np.percentile(retrieval_ms, 50)),
        retrieval_p95_ms=float(np.percentile(retrieval_ms, 95)),
        generated=n,
        fallbacks=len(reasons),
        groundedness=float(np.mean([share >= min_token_share for share in shares])) if n else 0.0,
        mean_grounded_token_share=float(np.mean(shares)) if n else 0.0,
        key_fact_recall=float(np.mean(facts)) if n else 0.0,
        answer_p50_ms=float(np.percentile(answer_ms, 50)) if n else 0.0,
        answer_p95_ms=float(np.percentile(answer_ms, 95)) if n else 0.0,
        fallback_reasons=reasons,
    )


def judge(m: RagMeasures, r: Rag) -> list[Criterion]:
    return [
        Criterion(f"retrieval recall@{m.k}", m.recall_at_k >= r.gate_min_recall_at_k, m.recall_at_k, None,
                  f">= {r.gate_min_recall_at_k}", f"{m.questions - len(m.misses)}/{m.questions} questions"),
        Criterion("retrieval MRR", m.mrr >= r.gate_min_mrr, m.mrr, None, f">= {r.gate_min_mrr}"),
        Criterion("answer groundedness", m.groundedness >= r.gate_min_groundedness, m.groundedness, None,
                  f">= {r.gate_min_groundedness}",
                  f"{m.generated} answers, {m.fallbacks} fell back to retrieval (counted as not grounded)"),
        Criterion("embed + retrieve p95 (ms)", m.retrieval_p95_ms <= r.gate_max_retrieval_p95_ms, m.retrieval_p95_ms,
                  None, f"<= {r.gate_max_retrieval_p95_ms:g}", f"{m.questions} questions"),
        Criterion("whole answer p95 (ms)", m.answer_p95_ms <= r.gate_max_answer_p95_ms, m.answer_p95_ms, None,
                  f"<= {r.gate_max_answer_p95_ms:g}", f"{m.generated} answers"),
    ]  # fmt: skip


@dataclass
class RagGateReport:
    model_name: str
    version_sha256: str  # the version judged (`RagConfig.sha256`): registration checks it is the one it registers
    index_sha256: str
    passed: bool
    criteria: list[Criterion]
    measures: RagMeasures

    def failures(self) -> list[Criterion]:
        return [c for c in self.criteria if not c.passed]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)
