"""The baseline every candidate must beat, trained on the same training split the heads use."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from pipelines.data import Example


@dataclass(frozen=True)
class BaselinePrediction:
    label: str


class MajorityClass:
    def __init__(self, train: list[Example]):
        self.label = Counter(ex.label for ex in train).most_common(1)[0][0]

    def predict(self, texts: list[str]) -> list[BaselinePrediction]:
        return [BaselinePrediction(self.label) for _ in texts]


class TfidfLogReg:
    """TF-IDF (word 1-2 grams) + logistic regression: the classic strong baseline for short texts."""

    def __init__(self, train: list[Example]):
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline

        self.model = make_pipeline(
            TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True),
            LogisticRegression(max_iter=2000, C=4.0),
        )
        self.model.fit([ex.text for ex in train], [ex.label for ex in train])

    def predict(self, texts: list[str]) -> list[BaselinePrediction]:
        return [BaselinePrediction(str(label)) for label in self.model.predict(texts)]


def train_baseline(kind: str, train: list[Example]) -> MajorityClass | TfidfLogReg:
    if kind == "majority_class":
        return MajorityClass(train)
    if kind == "tfidf_logreg":
        return TfidfLogReg(train)
    raise ValueError(f"unknown baseline {kind!r}; policy.promotion.baseline allows tfidf_logreg, majority_class")
