"""A variant that reuses another's head takes its scores only after answering like it (pipelines/packaging/build.py)."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.packaging.build import SAME_ANSWERS_SAMPLE, check_same_answers


class Fixed:
    """A classifier whose probabilities are given; records what it was asked."""

    def __init__(self, probabilities: list[list[float]]) -> None:
        self.probabilities = np.asarray(probabilities, dtype=np.float32)
        self.asked: list[str] = []

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        self.asked = texts
        return self.probabilities[: len(texts)]


def test_identical_answers_pass_and_only_the_sample_is_asked() -> None:
    texts = [f"text {i}" for i in range(SAME_ANSWERS_SAMPLE + 10)]
    rows = [[0.3, 0.7]] * len(texts)
    variant = Fixed(rows)
    check_same_answers(variant, Fixed(rows), texts)
    assert len(variant.asked) == SAME_ANSWERS_SAMPLE


def test_a_flipped_label_fails_with_what_to_do() -> None:
    with pytest.raises(RuntimeError, match=r"labels differ.*drop `head_of`"):
        check_same_answers(Fixed([[0.3, 0.7], [0.49, 0.51]]), Fixed([[0.3, 0.7], [0.51, 0.49]]), ["a", "b"])


def test_same_labels_but_drifting_probabilities_fail() -> None:
    with pytest.raises(RuntimeError, match=r"max probability difference 1\.00e-02"):
        check_same_answers(Fixed([[0.30, 0.70]]), Fixed([[0.31, 0.69]]), ["a"])


def test_float_noise_passes() -> None:
    check_same_answers(Fixed([[0.3, 0.7]]), Fixed([[0.3 + 6e-8, 0.7 - 6e-8]]), ["a"])
