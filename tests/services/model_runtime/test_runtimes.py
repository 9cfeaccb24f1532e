"""The runtime a packaged model needs comes from its artifacts; the llama.cpp encoder sees the ONNX encoder's
input (the same tokenizer ids, truncated alike) and keeps its embeddings."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from pipelines.data import load_split
from services.model_runtime.classifier import GGUF_FILE, ONNX_FILE, OnnxTextClassifier
from services.model_runtime.gguf import GgufTextClassifier
from services.model_runtime.runtimes import LLAMA_CPP, ONNX, encoder_file, load_classifier, runtime_of

MODELS = Path(__file__).resolve().parents[3] / "build" / "models"


def packaged(variant: str) -> Path:
    model_dir = MODELS / variant
    if not (model_dir / "metrics.json").exists():
        from tests.integration.conftest import mlp

        mlp("model", "package", "--variant", variant, timeout=1800)
    return model_dir


def gguf_encoder(kind: str, tmp_path: Path) -> Path:
    """A model folder whose encoder is the packaging cache's GGUF file of `kind` (f16, q4_k_m), with the registered
    Q8_0 variant's tokenizer and config: these tests compare embeddings, which need no head, and `make test`
    packages only the registered variants (the cache holds every GGUF form the Q8_0 one was made with)."""
    cached = sorted((MODELS / ".cache").glob(f"*/encoder-{kind}-llama-cpp-python*.gguf"))
    if not cached:
        return packaged(f"gguf-{kind}")
    folder = tmp_path / kind
    shutil.copytree(packaged("gguf-q8_0"), folder)
    shutil.copy(cached[-1], folder / GGUF_FILE)
    return folder


@pytest.fixture(scope="module")
def texts() -> list[str]:
    return [ex.text for ex in load_split("validation")[:48]]


def test_the_encoder_file_decides_the_runtime(tmp_path: Path) -> None:
    assert runtime_of(packaged("int8")) == ONNX and encoder_file(packaged("int8")).name == ONNX_FILE
    assert runtime_of(packaged("gguf-q8_0")) == LLAMA_CPP and encoder_file(packaged("gguf-q8_0")).name == GGUF_FILE
    assert isinstance(load_classifier(packaged("int8")), OnnxTextClassifier)
    assert isinstance(load_classifier(packaged("gguf-q8_0")), GgufTextClassifier)


def test_a_folder_with_two_encoders_or_none_is_refused_naming_the_files(tmp_path: Path) -> None:
    both = tmp_path / "both"
    shutil.copytree(packaged("gguf-q8_0"), both)
    shutil.copy(packaged("int8") / ONNX_FILE, both / ONNX_FILE)
    with pytest.raises(ValueError, match=r"both model\.onnx and model\.gguf"):
        load_classifier(both)
    (both / ONNX_FILE).unlink()
    (both / GGUF_FILE).unlink()
    with pytest.raises(ValueError, match=r"no encoder \(model\.onnx or model\.gguf\)"):
        load_classifier(both)


def test_a_gguf_version_is_refused_on_a_gpu_provider() -> None:
    with pytest.raises(ValueError, match="runs on the CPU only"):
        load_classifier(packaged("gguf-q8_0"), providers=[("CUDAExecutionProvider", {}), "CPUExecutionProvider"])


def test_the_f16_gguf_encoder_gives_the_onnx_fp32_embeddings(texts: list[str], tmp_path: Path) -> None:
    gguf = load_classifier(gguf_encoder("f16", tmp_path), threads=2)
    onnx = load_classifier(packaged("fp32"), threads=2)
    cosines = np.sum(gguf.embed(texts) * onnx.embed(texts), axis=1)
    assert cosines.min() > 0.9999  # F16 weights, F32 arithmetic: the same vectors
    quantised = load_classifier(gguf_encoder("q4_k_m", tmp_path), threads=2).embed(texts)
    assert 0.9 < np.sum(quantised * onnx.embed(texts), axis=1).min() < 0.9999  # close, and really quantised


def test_a_long_text_is_truncated_as_the_onnx_runtime_truncates(texts: list[str], tmp_path: Path) -> None:
    gguf = load_classifier(gguf_encoder("f16", tmp_path))
    onnx = load_classifier(packaged("fp32"))
    long = " ".join(texts)  # far beyond max_seq_tokens
    assert len(gguf.tokenizer.encode(long).ids) == gguf.config.max_seq_tokens
    cosine = float(np.sum(gguf.embed([long]) * onnx.embed([long])))
    assert cosine > 0.9999
    # ... and the tail past the limit changes nothing.
    assert np.allclose(gguf.embed([long]), gguf.embed([long + " utterly dreadful, a disaster"]), atol=1e-6)


def test_concurrent_predictions_answer_as_serial_ones(texts: list[str]) -> None:
    gguf = load_classifier(packaged("gguf-q8_0"))
    serial = gguf.predict_proba(texts)
    results: dict[int, np.ndarray] = {}

    def run(i: int) -> None:
        results[i] = gguf.predict_proba(texts)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(np.allclose(r, serial, atol=1e-6) for r in results.values())


def test_no_texts_give_an_empty_batch() -> None:
    gguf = load_classifier(packaged("gguf-q8_0"))
    assert gguf.embed([]).shape == (0, 384) and gguf.predict([]) == []
