"""The reference: built from the training split with the model, cached, and reloaded identically."""

from __future__ import annotations

import pandas as pd

from pipelines.drift import reference
from pipelines.drift.features import FEATURE_COLUMNS
from services.model_runtime.classifier import OnnxTextClassifier
from tests.pipelines.drift.conftest import REFERENCE_LIMIT


def test_reference_is_cached_and_reloads_the_same(
    classifier: OnnxTextClassifier, small_reference: reference.Reference
) -> None:
    assert list(small_reference.frame.columns) == FEATURE_COLUMNS
    assert len(small_reference.frame) == REFERENCE_LIMIT
    assert small_reference.meta["dataset_sha256"] and small_reference.meta["split"] == "train"
    messages: list[str] = []
    again = reference.load_or_build(
        classifier, 7, small_reference.path.parent, REFERENCE_LIMIT, progress=messages.append
    )
    assert messages == []  # served from the cache: nothing embedded
    assert again.path == small_reference.path
    pd.testing.assert_frame_equal(again.frame, small_reference.frame, check_exact=False, rtol=1e-5)


def test_cache_key_changes_with_model_and_sample(classifier: OnnxTextClassifier, tmp_path) -> None:  # type: ignore[no-untyped-def]
    base = reference.cache_key("int8", classifier.model_dir, 100)
    assert reference.cache_key("int8", classifier.model_dir, 200) != base
    copy = tmp_path / "model"
    copy.mkdir()
    for name in ("model.onnx", "tokenizer.json", "model_config.json"):
        (copy / name).write_bytes((classifier.model_dir / name).read_bytes())
    assert reference.cache_key("int8", copy, 100) == base  # content, not path
    (copy / "model_config.json").write_text((copy / "model_config.json").read_text() + " ")
    assert reference.cache_key("int8", copy, 100) != base


def test_reference_sample_is_deterministic() -> None:
    assert reference.reference_texts(50) == reference.reference_texts(50)
    assert len(set(reference.reference_texts(50))) == 50
