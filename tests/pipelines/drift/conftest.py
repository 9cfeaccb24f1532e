"""A packaged model and a small cached reference, shared by the drift unit tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.drift import reference
from services.model_runtime.classifier import OnnxTextClassifier

REPO_ROOT = Path(__file__).resolve().parents[3]
MODEL_DIR = REPO_ROOT / "build" / "models" / "int8"
REFERENCE_LIMIT = 800  # a fixed-seed sample of the training split: keeps the suite fast


@pytest.fixture(scope="session")
def classifier() -> OnnxTextClassifier:
    if not (MODEL_DIR / "model.onnx").exists():
        from tests.integration.conftest import mlp

        mlp("model", "package", "--variant", "int8", timeout=1800)
    return OnnxTextClassifier.load(MODEL_DIR, intra_op_threads=2)


@pytest.fixture(scope="session")
def small_reference(classifier: OnnxTextClassifier, tmp_path_factory: pytest.TempPathFactory) -> reference.Reference:
    root = tmp_path_factory.mktemp("drift-reference")
    return reference.load_or_build(classifier, None, root, REFERENCE_LIMIT, progress=lambda _m: None)
