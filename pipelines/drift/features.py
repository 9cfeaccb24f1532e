"""Monitored features of a text and of the model's answer to it.

Input drift: length in characters, token count, out-of-vocabulary rate, a few principal components of the
sentence embedding and its cosine distance to the reference centroid. Prediction drift: predicted label and
confidence. The embedding projection is fitted on the reference set, so reference and current traffic are
projected on the same axes (why these features: docs/decisions/0111-drift-features.md).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from services.model_runtime.classifier import TextClassifier

EMBEDDING_COMPONENTS = 5  # principal components of the embedding that are monitored
EMBED_BATCH = 64
LABEL_COLUMN = "predicted_label"
NUMERIC_COLUMNS = [
    "text_chars",
    "n_tokens",
    "oov_rate",
    *[f"emb_pc{i + 1}" for i in range(EMBEDDING_COMPONENTS)],
    "emb_centroid_distance",
    "confidence",
]
CATEGORICAL_COLUMNS = [LABEL_COLUMN]
FEATURE_COLUMNS = [*NUMERIC_COLUMNS, *CATEGORICAL_COLUMNS]


@dataclass(frozen=True)
class ServedPrediction:
    """What the model server answered for one text (from the inference log)."""

    label: str
    confidence: float


@dataclass(frozen=True)
class EmbeddingSpace:
    """Axes fitted on the reference embeddings: mean, top principal components, unit centroid."""

    mean: np.ndarray  # (dim,)
    components: np.ndarray  # (k, dim), orthonormal rows
    centroid: np.ndarray  # (dim,), unit length

    @classmethod
    def fit(cls, embeddings: np.ndarray, n_components: int = EMBEDDING_COMPONENTS) -> EmbeddingSpace:
        if embeddings.ndim != 2 or embeddings.shape[0] <= n_components:
            raise ValueError(f"need more than {n_components} reference embeddings, got shape {embeddings.shape}")
        mean = embeddings.mean(axis=0)
        _, _, vt = np.linalg.svd(embeddings - mean, full_matrices=False)
        components = vt[:n_components]
        # The sign of a singular vector is arbitrary: fix it so a cached reference and a refit agree.
        signs = np.sign(components[np.arange(n_components), np.abs(components).argmax(axis=1)])
        components = components * signs[:, None]
        norm = float(np.linalg.norm(mean))
        centroid = mean / norm if norm > 0 else mean
        return cls(mean.astype(np.float32), components.astype(np.float32), centroid.astype(np.float32))

    def project(self, embeddings: np.ndarray) -> np.ndarray:
        return np.asarray((embeddings - self.mean) @ self.components.T)

    def centroid_distance(self, embeddings: np.ndarray) -> np.ndarray:
        """Cosine distance to the reference centroid (embeddings are L2-normalised by the runtime)."""
        norms = np.linalg.norm(embeddings, axis=1)
        norms[norms == 0] = 1.0
        return np.asarray(1.0 - (embeddings @ self.centroid) / norms)

    def save(self, path: Path) -> None:
        np.savez(path, mean=self.mean, components=self.components, centroid=self.centroid)

    @classmethod
    def load(cls, path: Path) -> EmbeddingSpace:
        with np.load(path) as data:
            return cls(data["mean"], data["components"], data["centroid"])


def embed(
    classifier: TextClassifier, texts: Sequence[str], progress: Callable[[int, int], None] | None = None
) -> np.ndarray:
    """Embeddings in batches (the runtime pads to the longest text of a batch), reporting progress."""
    parts = []
    for start in range(0, len(texts), EMBED_BATCH):
        parts.append(classifier.embed(list(texts[start : start + EMBED_BATCH])))
        if progress:
            progress(min(start + EMBED_BATCH, len(texts)), len(texts))
    if not parts:
        return classifier.embed([])
    return np.vstack(parts)


def predictions_from_embeddings(classifier: TextClassifier, embeddings: np.ndarray) -> list[ServedPrediction]:
    """The head applied to embeddings already computed (same maths as `TextClassifier.predict_proba`)."""
    logits = embeddings @ classifier.config.coef.T + classifier.config.intercept
    logits = logits - logits.max(axis=1, keepdims=True)
    probs = np.exp(logits)
    probs /= probs.sum(axis=1, keepdims=True)
    labels = classifier.labels
    return [ServedPrediction(labels[int(row.argmax())], float(row.max())) for row in probs]


def text_features(classifier: TextClassifier, texts: Sequence[str]) -> pd.DataFrame:
    """The features that need only the tokenizer: length, token count, out-of-vocabulary rate."""
    return pd.DataFrame(
        {
            "text_chars": [len(t) for t in texts],
            "n_tokens": classifier.count_tokens(list(texts)),
            "oov_rate": [1.0 - classifier.vocab_hit_rate(t) for t in texts],
        }
    )


def feature_frame(
    classifier: TextClassifier,
    texts: Sequence[str],
    embeddings: np.ndarray,
    space: EmbeddingSpace,
    predictions: Sequence[ServedPrediction],
) -> pd.DataFrame:
    """One row per text with every column of FEATURE_COLUMNS, in that order."""
    if not (len(texts) == len(embeddings) == len(predictions)):
        raise ValueError(f"{len(texts)} texts, {len(embeddings)} embeddings, {len(predictions)} predictions")
    frame = text_features(classifier, texts)
    components = space.project(embeddings) if len(texts) else np.zeros((0, space.components.shape[0]))
    for i in range(components.shape[1]):
        frame[f"emb_pc{i + 1}"] = components[:, i]
    frame["emb_centroid_distance"] = space.centroid_distance(embeddings) if len(texts) else []
    frame["confidence"] = [p.confidence for p in predictions]
    frame[LABEL_COLUMN] = [p.label for p in predictions]
    return typed(frame)


def typed(frame: pd.DataFrame) -> pd.DataFrame:
    """FEATURE_COLUMNS in order, numeric as float64 and the label as str: one schema for built and cached frames."""
    out = frame[FEATURE_COLUMNS].copy()
    out[NUMERIC_COLUMNS] = out[NUMERIC_COLUMNS].astype("float64")
    out[CATEGORICAL_COLUMNS] = out[CATEGORICAL_COLUMNS].astype(str)
    return out
