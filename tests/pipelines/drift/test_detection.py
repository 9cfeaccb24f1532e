"""With real embeddings of a packaged model: in-distribution traffic does not alert, shifted traffic does."""

from __future__ import annotations

import random

from core.policy import policy
from pipelines.data import load_shifted, load_split
from pipelines.drift import check, features, reference
from services.model_runtime.classifier import OnnxTextClassifier

SAMPLES = 300


def _served(classifier: OnnxTextClassifier, texts: list[str]) -> list[features.ServedPrediction]:
    return [features.ServedPrediction(p.label, p.confidence) for p in classifier.predict(texts)]


def test_validation_traffic_does_not_alert(
    classifier: OnnxTextClassifier, small_reference: reference.Reference
) -> None:
    texts = random.Random(3).sample([e.text for e in load_split("validation")], SAMPLES)
    share, per_feature, _ = check.score(classifier, small_reference, texts, _served(classifier, texts))
    assert share <= policy().drift.threshold, [f for f in per_feature if f.drifted]
    assert share == sum(f.drifted for f in per_feature) / len(per_feature)


def test_heldout_traffic_does_not_alert(classifier: OnnxTextClassifier, small_reference: reference.Reference) -> None:
    texts = random.Random(4).sample([e.text for e in load_split("heldout")], SAMPLES)
    share, _, _ = check.score(classifier, small_reference, texts, _served(classifier, texts))
    assert share <= policy().drift.threshold


def test_shifted_traffic_alerts(classifier: OnnxTextClassifier, small_reference: reference.Reference) -> None:
    texts = random.Random(5).sample(load_shifted(), SAMPLES)
    share, per_feature, _ = check.score(classifier, small_reference, texts, _served(classifier, texts))
    assert share > policy().drift.threshold
    drifted = {f.name for f in per_feature if f.drifted}
    # Headlines are shorter, name unseen entities and sit elsewhere in embedding space.
    assert {"text_chars", "oov_rate", "emb_centroid_distance"} <= drifted


def test_a_shifted_minority_is_diluted(classifier: OnnxTextClassifier, small_reference: reference.Reference) -> None:
    """10% headlines among reviews: the share stays under the threshold (the alert is about the bulk of traffic)."""
    rng = random.Random(6)
    texts = rng.sample([e.text for e in load_split("validation")], 270) + rng.sample(load_shifted(), 30)
    share, _, _ = check.score(classifier, small_reference, texts, _served(classifier, texts))
    assert share <= policy().drift.threshold
