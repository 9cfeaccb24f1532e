"""Features computed on known inputs."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.drift.features import (
    EMBEDDING_COMPONENTS,
    FEATURE_COLUMNS,
    EmbeddingSpace,
    ServedPrediction,
    embed,
    feature_frame,
    predictions_from_embeddings,
    text_features,
)
from services.model_runtime.classifier import OnnxTextClassifier


def test_space_components_are_orthonormal_and_centred() -> None:
    rng = np.random.default_rng(0)
    # Variance concentrated on known axes: the first component must be axis 0, the second axis 1.
    data = rng.normal(size=(500, 8)) * np.array([10, 5, 1, 1, 1, 1, 1, 1]) + 3.0
    space = EmbeddingSpace.fit(data, n_components=2)
    assert np.allclose(space.components @ space.components.T, np.eye(2), atol=1e-5)
    assert abs(space.components[0, 0]) > 0.99 and abs(space.components[1, 1]) > 0.99
    assert np.allclose(space.project(space.mean[None, :]), 0, atol=1e-5)
    assert np.allclose(space.project(data).mean(axis=0), 0, atol=1e-3)


def test_centroid_distance_is_cosine_distance() -> None:
    data = np.array([[1.0, 0.0, 0.0], [0.9, 0.1, 0.0], [0.95, 0.0, 0.05], [1.0, 0.05, 0.0]])
    space = EmbeddingSpace.fit(data, n_components=2)
    probes = np.array([space.centroid, [0.0, 0.0, 1.0] - space.centroid[2] * space.centroid, -space.centroid])
    distances = space.centroid_distance(probes)
    assert distances[0] == pytest.approx(0, abs=1e-6)  # same direction
    assert distances[1] == pytest.approx(1, abs=1e-6)  # orthogonal
    assert distances[2] == pytest.approx(2, abs=1e-6)  # opposite


def test_space_save_load_round_trip(tmp_path) -> None:  # type: ignore[no-untyped-def]
    space = EmbeddingSpace.fit(np.random.default_rng(1).normal(size=(50, 6)), n_components=3)
    space.save(tmp_path / "space.npz")
    loaded = EmbeddingSpace.load(tmp_path / "space.npz")
    assert np.array_equal(space.components, loaded.components) and np.array_equal(space.centroid, loaded.centroid)


def test_fit_needs_more_rows_than_components() -> None:
    with pytest.raises(ValueError, match="more than"):
        EmbeddingSpace.fit(np.zeros((3, 8)), n_components=5)


def test_text_features_on_known_texts(classifier: OnnxTextClassifier) -> None:
    texts = ["a good film", "the qwzxv blorptang", "!!!"]
    frame = text_features(classifier, texts)
    assert frame["text_chars"].tolist() == [11, 19, 3]
    # [CLS] a good film [SEP]; [CLS] the q ##w ##z ##x ##v b ##lor ##pta ##ng [SEP]; [CLS] ! ! ! [SEP]
    assert frame["n_tokens"].tolist() == [5, 12, 5]
    # "a", "good", "film" are whole-word tokens; two of the three words of the second text are not; no words -> 0.
    assert frame["oov_rate"].tolist() == pytest.approx([0.0, 2 / 3, 0.0])
    assert frame["n_tokens"][1] > frame["n_tokens"][0]  # made-up words split into word pieces


def test_feature_frame_columns_and_served_predictions(classifier: OnnxTextClassifier) -> None:
    texts = ["a moving, beautifully acted drama", "tedious and far too long", "a film", "an actor", "the plot", "meh"]
    embeddings = embed(classifier, texts)
    space = EmbeddingSpace.fit(embeddings, n_components=EMBEDDING_COMPONENTS)
    served = [ServedPrediction("positive", 0.9)] * len(texts)
    frame = feature_frame(classifier, texts, embeddings, space, served)
    assert list(frame.columns) == FEATURE_COLUMNS
    assert len(frame) == len(texts)
    # The logged answer is what is monitored (prediction drift), not a recomputation.
    assert set(frame["predicted_label"]) == {"positive"} and set(frame["confidence"]) == {0.9}
    assert ((frame["emb_centroid_distance"] >= 0) & (frame["emb_centroid_distance"] <= 2)).all()


def test_head_on_embeddings_matches_runtime_predict(classifier: OnnxTextClassifier) -> None:
    texts = ["a moving, beautifully acted drama", "tedious and far too long"]
    ours = predictions_from_embeddings(classifier, embed(classifier, texts))
    runtime = classifier.predict(texts)
    assert [p.label for p in ours] == [p.label for p in runtime]
    assert [p.confidence for p in ours] == pytest.approx([p.confidence for p in runtime], abs=1e-5)


def test_feature_frame_rejects_mismatched_inputs(classifier: OnnxTextClassifier) -> None:
    embeddings = embed(classifier, ["one", "two", "three", "four", "five", "six", "seven"])
    space = EmbeddingSpace.fit(embeddings)
    with pytest.raises(ValueError, match="2 texts"):
        feature_frame(classifier, ["one", "two"], embeddings, space, [ServedPrediction("positive", 0.5)] * 2)
