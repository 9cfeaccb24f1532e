"""A generative model on llama.cpp (llama-cpp-python): one GGUF file, greedy decoding, timed token by token.

A packaged generator is a folder with `model.gguf` and `generator.json` (pipelines/packaging/generator.py). Its
runtime is llama.cpp whatever the catalogue says: the artifacts decide, as for the classifier's versions.

One llama.cpp context decodes one request at a time (the lock); the server queues the rest. Greedy decoding
(temperature 0) makes an answer a function of the prompt and the weights only, so the gate's measures and a canary's
comparison of two versions do not depend on a seed.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import llama_cpp

GENERATOR_FILE = "model.gguf"
GENERATOR_CONFIG = "generator.json"


@dataclass(frozen=True)
class GeneratorConfig:
    """What packaging wrote beside the weights: where they came from, and how they are run."""

    name: str  # the packaged form, e.g. "gemma3-270m-q4_k_m"
    quantisation: str
    source: str
    sha256: str

    @classmethod
    def read(cls, model_dir: Path) -> GeneratorConfig:
        path = model_dir / GENERATOR_CONFIG
        try:
            raw = json.loads(path.read_text())
            return cls(str(raw["name"]), str(raw["quantisation"]), str(raw["source"]), str(raw["sha256"]))
        except FileNotFoundError as exc:
            raise ValueError(f"{model_dir}: missing {GENERATOR_CONFIG}; re-run `mlp model package-generator`") from exc
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}: not a generator config ({exc!r}); re-run `mlp model package-generator`") from exc


@dataclass(frozen=True)
class Generation:
    """One answer and how it was produced."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop" (the model ended it) | "length" (max_tokens reached)
    ttft_seconds: float  # request start to the first generated token (the prompt's evaluation included)
    inter_token_seconds: list[float]  # between consecutive generated tokens
    total_seconds: float

    @property
    def tokens_per_second(self) -> float:
        """Decode speed after the first token (the prompt's evaluation is TTFT's)."""
        decode = self.total_seconds - self.ttft_seconds
        return (self.completion_tokens - 1) / decode if self.completion_tokens > 1 and decode > 0 else 0.0


class PromptTooLong(ValueError):
    """The prompt and the tokens asked for do not fit the context."""


class GgufGenerator:
    """Thread-safe: one request decodes at a time."""

    runtime = "llama.cpp"

    def __init__(self, model_dir: Path, config: GeneratorConfig, llm: llama_cpp.Llama, scoring: bool = False):
        self.model_dir = model_dir
        self.scoring = scoring
        self.config = config
        self.llm = llm
        self._lock = threading.Lock()

    @classmethod
    def load(cls, model_dir: Path | str, *, context_tokens: int, threads: int, scoring: bool = False) -> GgufGenerator:
        """`scoring`: keep every position's logits, for `choice_log_likelihood` (the gate). It costs context x
        vocabulary floats (Gemma 3: 262,144 per position), so the gate loads a short context for it."""
        import llama_cpp  # loaded by generate servers and the gate only: the control plane reads the constants

        model_dir = Path(model_dir)
        config = GeneratorConfig.read(model_dir)
        if not (model_dir / GENERATOR_FILE).is_file():
            raise ValueError(f"{model_dir}: missing {GENERATOR_FILE}; re-run `mlp model package-generator`")
        llm = llama_cpp.Llama(
            model_path=str(model_dir / GENERATOR_FILE),
            n_ctx=context_tokens,
            n_threads=threads,
            n_threads_batch=threads,
            logits_all=scoring,
            verbose=False,
        )
        return cls(model_dir, config, llm, scoring)

    def count_tokens(self, text: str) -> int:
        return len(self.llm.tokenize(text.encode(), add_bos=True))

    def generate(self, prompt: str, max_tokens: int) -> Generation:
        """Greedy completion of `prompt`, at most `max_tokens` tokens; PromptTooLong if it cannot fit."""
        with self._lock:
            return self._generate(prompt, max_tokens)

    def _generate(self, prompt: str, max_tokens: int) -> Generation:
        prompt_tokens = self.count_tokens(prompt)
        if prompt_tokens + max_tokens > self.llm.n_ctx():
            raise PromptTooLong(
                f"the prompt is {prompt_tokens} tokens and {max_tokens} are asked for: more than the model's "
                f"context of {self.llm.n_ctx()}; shorten the prompt or ask for fewer tokens"
            )
        started = time.perf_counter()
        stamps: list[float] = []
        pieces: list[str] = []
        finish = "length"
        stream: Iterator[Any] = self.llm.create_completion(prompt, max_tokens=max_tokens, temperature=0.0, stream=True)  # type: ignore[assignment]
        for chunk in stream:
            choice = chunk["choices"][0]
            stamps.append(time.perf_counter())
            pieces.append(choice["text"])
            if choice.get("finish_reason"):
                finish = str(choice["finish_reason"])
        ended = time.perf_counter()
        # The stream's last chunk may carry only the finish reason: count the chunks that carried text.
        produced = [t for t, piece in zip(stamps, pieces, strict=True) if piece]
        return Generation(
            text="".join(pieces),
            prompt_tokens=prompt_tokens,
            completion_tokens=len(produced),
            finish_reason=finish,
            ttft_seconds=(produced[0] if produced else ended) - started,
            inter_token_seconds=[b - a for a, b in itertools.pairwise(produced)],
            total_seconds=ended - started,
        )

    def choice_log_likelihood(self, prompt: str, continuation: str) -> float:
        """Sum of the log-probabilities of `continuation`'s tokens after `prompt` (how multiple-choice benchmarks
        score a base model: the choice the model finds most likely is its answer)."""
        if not self.scoring:
            raise RuntimeError("load the generator with scoring=True to score continuations")
        with self._lock:
            context = self.llm.tokenize(prompt.encode(), add_bos=True)
            tokens = self.llm.tokenize(continuation.encode(), add_bos=False)
            if not tokens:
                raise ValueError(f"empty continuation after {prompt!r}")
            self.llm.reset()
            self.llm.eval(context + tokens)
            # Row i holds the logits predicting token i + 1.
            rows = np.asarray(self.llm.scores[len(context) - 1 : len(context) + len(tokens) - 1], dtype=np.float64)
            peak = rows.max(axis=1, keepdims=True)
            log_norm = peak[:, 0] + np.log(np.exp(rows - peak).sum(axis=1))
            return float(sum(rows[i, tok] - log_norm[i] for i, tok in enumerate(tokens)))
