"""The gate of a `generate` model: may this packaged generator serve? (thresholds: policy `generation`)

1. quality: on the shipped held-out questions (pipelines/data/generation_eval), the share whose right continuation
   the model scores most likely, by summed log-probability over the four choices. This is how base language models
   are compared on multiple-choice benchmarks (the "acc" of EleutherAI's lm-evaluation-harness): it needs no
   sampling, no judge model and no string matching of free text, and chance is known (1/4), so a broken or badly
   quantised file shows as a fall towards chance;
2. time to first token, p95 over the timed prompts (greedy, `gate_new_tokens` each);
3. decode speed, median tokens/s over the same prompts.
It also prices the model from what it measured (cost per 1,000 requests and per million tokens on the model's pod
share of the policy's CPU instance), so the cost of a version is known before it serves.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.cost import generation_costs, replica_usd_per_hour
from core.policy import REPO_ROOT, Policy
from pipelines.gate import Criterion
from services.model_runtime.generator import GgufGenerator

QUESTIONS = REPO_ROOT / "pipelines" / "data" / "generation_eval" / "questions.json"
SCORING_CONTEXT = 128  # scoring keeps every position's logits: a short context keeps that small
TIMED_PROMPTS = 10  # the first questions' prompts, generated from in full
METHOD = (
    "quality: choice accuracy by log-likelihood on the held-out questions; speed: greedy generation of the first "
    f"{TIMED_PROMPTS} prompts after one warm-up, TTFT p95 and median decode tokens/s; cost: the model's pod share "
    "of the CPU instance, one request decoding at a time"
)


@dataclass(frozen=True)
class Question:
    prompt: str
    choices: list[str]
    answer: int


@dataclass(frozen=True)
class GenerationMeasures:
    questions: int
    choice_accuracy: float
    chance: float
    misses: list[str]
    prompts: int
    ttft_p50_ms: float
    ttft_p95_ms: float
    tokens_per_second: float  # median over the prompts
    inter_token_p95_ms: float


@dataclass
class GenerationGateReport:
    model_name: str
    form: str
    sha256: str  # of the file measured: registration checks it is the file it registers
    passed: bool
    criteria: list[Criterion]
    measures: GenerationMeasures
    cost: dict[str, Any] = field(default_factory=dict)
    method: str = METHOD

    def failures(self) -> list[Criterion]:
        return [c for c in self.criteria if not c.passed]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


def read_questions(path: Path = QUESTIONS) -> list[Question]:
    raw = json.loads(path.read_text())["questions"]
    questions = [Question(q["prompt"], list(q["choices"]), int(q["answer"])) for q in raw]
    for q in questions:
        if not 0 <= q.answer < len(q.choices) or len(q.choices) < 2:
            raise ValueError(f"{path}: {q.prompt!r}: answer {q.answer} is not one of {len(q.choices)} choices")
    return questions


def choice_accuracy(score: Callable[[str, str], float], questions: list[Question]) -> tuple[float, list[str]]:
    """Share of questions whose right choice scores highest; the prompts of the misses."""
    misses = []
    for q in questions:
        scores = [score(q.prompt, " " + choice) for choice in q.choices]
        if int(np.argmax(scores)) != q.answer:
            misses.append(q.prompt)
    return 1 - len(misses) / len(questions), misses


def measure(
    scorer: GgufGenerator, generator: GgufGenerator, questions: list[Question], p: Policy
) -> GenerationMeasures:
    accuracy, misses = choice_accuracy(scorer.choice_log_likelihood, questions)
    generator.generate(questions[0].prompt, 4)  # warm-up, not timed
    runs = [generator.generate(q.prompt, p.generation.gate_new_tokens) for q in questions[:TIMED_PROMPTS]]
    ttft_ms = [r.ttft_seconds * 1000 for r in runs]
    gaps_ms = [g * 1000 for r in runs for g in r.inter_token_seconds]
    return GenerationMeasures(
        questions=len(questions),
        choice_accuracy=accuracy,
        chance=float(np.mean([1 / len(q.choices) for q in questions])),
        misses=misses,
        prompts=len(runs),
        ttft_p50_ms=float(np.percentile(ttft_ms, 50)),
        ttft_p95_ms=float(np.percentile(ttft_ms, 95)),
        tokens_per_second=statistics.median(r.tokens_per_second for r in runs),
        inter_token_p95_ms=float(np.percentile(gaps_ms, 95)) if gaps_ms else 0.0,
    )


def judge(m: GenerationMeasures, p: Policy) -> list[Criterion]:
    g = p.generation
    return [
        Criterion(
            "choice accuracy (held-out questions)",
            m.choice_accuracy >= g.gate_min_choice_accuracy,
            m.choice_accuracy,
            m.chance,
            f">= {g.gate_min_choice_accuracy} (reference: chance)",
            f"{m.questions - len(m.misses)}/{m.questions} right",
        ),
        Criterion(
            "time to first token p95 (ms)",
            m.ttft_p95_ms <= g.gate_max_ttft_p95_ms,
            m.ttft_p95_ms,
            None,
            f"<= {g.gate_max_ttft_p95_ms:g}",
            f"{m.prompts} prompts",
        ),
        Criterion(
            "decode speed (tokens/s, median)",
            m.tokens_per_second >= g.gate_min_tokens_per_second,
            m.tokens_per_second,
            None,
            f">= {g.gate_min_tokens_per_second:g}",
            f"{p.generation.gate_new_tokens} tokens per prompt",
        ),
    ]


def run_generation_gate(model_dir: Path, model_name: str, p: Policy, report_dir: Path) -> GenerationGateReport:
    """Load the packaged generator twice (a scoring context and a serving one), measure, judge, price, report."""
    mp = p.for_model(model_name)
    if mp.model(model_name).task != "generate":
        raise ValueError(f"{model_name} is a {mp.model(model_name).task} model; this gate judges generate models")
    questions = read_questions()
    threads = mp.generation.threads
    scorer = GgufGenerator.load(model_dir, context_tokens=SCORING_CONTEXT, threads=threads, scoring=True)
    generator = GgufGenerator.load(model_dir, context_tokens=mp.generation.context_tokens, threads=threads)
    m = measure(scorer, generator, questions, mp)
    criteria = judge(m, mp)
    cost = generation_costs(
        replica_usd_per_hour(mp), m.ttft_p50_ms / 1000, m.tokens_per_second, mp.generation.default_new_tokens
    )
    report = GenerationGateReport(
        model_name,
        generator.config.name,
        generator.config.sha256,
        all(c.passed for c in criteria),
        criteria,
        m,
        cost=asdict(cost),
    )
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / f"gate-{model_name}-{generator.config.name}.json").write_text(report.to_json())
    return report
