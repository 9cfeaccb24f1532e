"""The parts of building a retrained package that decide what it is trained on and what it is tagged with."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from pipelines.data import Example, load_shifted_split
from pipelines.retrain.train import balanced, check_runtime_agrees, head_labels, shifted_training_examples
from services.model_runtime.classifier import ModelConfig, OnnxTextClassifier

REPO_ROOT = Path(__file__).resolve().parents[3]
FP32 = REPO_ROOT / "build" / "models" / "fp32"


def test_balanced_keeps_the_first_of_each_label_up_to_the_rarest() -> None:
    examples = [Example(f"t{i}", label) for i, label in enumerate("nnpnnpn")]
    examples = [Example(ex.text, "negative" if ex.label == "n" else "positive") for ex in examples]
    kept = balanced(examples)
    assert [ex.text for ex in kept] == ["t0", "t1", "t2", "t5"]  # file order kept, 2 of each


def test_shifted_training_examples_are_the_balanced_train_split() -> None:
    used = shifted_training_examples()
    counts = Counter(ex.label for ex in used)
    train = Counter(ex.label for ex in load_shifted_split("train"))
    assert counts["negative"] == counts["positive"] == min(train.values())


def test_head_labels_are_the_argmax_of_the_logits() -> None:
    head = ModelConfig(
        "x", ["negative", "positive"], 8, "longest", np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([0.0, 0.5])
    )
    assert head_labels(head, np.array([[1.0, 0.0], [0.0, 0.2], [0.4, 0.0]])) == ["negative", "positive", "positive"]


def test_a_package_whose_runtime_answers_differ_from_the_scores_is_refused() -> None:
    config = ModelConfig.read(FP32)
    texts = [ex.text for ex in load_shifted_split("validation")[:8]]
    vectors = OnnxTextClassifier.load(FP32).embed(texts)
    check_runtime_agrees(FP32, config, vectors, texts)  # the package as scored: accepted
    flipped = ModelConfig(
        config.variant, config.labels, config.max_seq_tokens, config.padding, -config.coef, -config.intercept
    )
    with pytest.raises(RuntimeError, match="answers differently"):
        check_runtime_agrees(FP32, flipped, vectors, texts)
