"""Which engine runs a packaged model, decided by its artifacts: `model.onnx` -> ONNX Runtime, `model.gguf` ->
llama.cpp. Everything that loads a version (model server, gate, drift job, registration, retraining) loads it
here, so a version's runtime comes from what was registered, never from a setting.
"""

from __future__ import annotations

from pathlib import Path

from services.model_runtime.classifier import CPU_PROVIDER, GGUF_FILE, ONNX_FILE, OnnxTextClassifier, TextClassifier

ONNX = "onnx"
LLAMA_CPP = "llama.cpp"


def runtime_of(model_dir: Path | str) -> str:
    """The runtime a packaged model directory needs; a clear error when it holds no encoder or two."""
    model_dir = Path(model_dir)
    onnx, gguf = (model_dir / ONNX_FILE).is_file(), (model_dir / GGUF_FILE).is_file()
    if onnx and gguf:
        raise ValueError(f"{model_dir}: both {ONNX_FILE} and {GGUF_FILE}; a version holds one encoder")
    if not onnx and not gguf:
        raise ValueError(f"{model_dir}: no encoder ({ONNX_FILE} or {GGUF_FILE}); re-run `mlp model package`")
    return LLAMA_CPP if gguf else ONNX


def encoder_file(model_dir: Path | str) -> Path:
    """The encoder of a packaged model (`model.onnx` or `model.gguf`): what decides its embeddings."""
    return Path(model_dir) / (GGUF_FILE if runtime_of(model_dir) == LLAMA_CPP else ONNX_FILE)


def load_classifier(
    model_dir: Path | str,
    *,
    threads: int = 1,
    inter_op_threads: int = 1,
    providers: list[str | tuple[str, dict[str, str]]] | None = None,
) -> TextClassifier:
    """Load a packaged model with the runtime its artifacts need. `providers` apply to ONNX Runtime only;
    llama.cpp runs on the CPU here (a GPU version is an ONNX version on the CUDA provider)."""
    if runtime_of(model_dir) == LLAMA_CPP:
        try:
            from services.model_runtime.gguf import GgufTextClassifier  # llama.cpp is loaded for GGUF versions only
        except ImportError as exc:
            raise ValueError(
                f"{model_dir} is a GGUF version and this environment has no llama.cpp runtime ({exc}): install "
                "requirements/llama.lock (llama-cpp-python), or serve an ONNX version here"
            ) from exc

        if providers and any((p if isinstance(p, str) else p[0]) != CPU_PROVIDER for p in providers):
            raise ValueError(f"{model_dir}: a GGUF version runs on the CPU only; serve an ONNX version on the GPU")
        return GgufTextClassifier.load(model_dir, threads=threads)
    return OnnxTextClassifier.load(
        model_dir, intra_op_threads=threads, inter_op_threads=inter_op_threads, providers=providers
    )
