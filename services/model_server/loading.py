"""Resolve, fetch, load and warm up the ONE model version a server serves (no BentoML, no PyTorch here).

`MLP_MODEL_VERSION` names the version (a number or an alias such as `champion`); it is resolved once through
the MLflow registry and downloaded to the model cache (`MLP_MODEL_CACHE`, default `<MLP_STATE_DIR>/models`, else a
temporary folder). `MLP_MODEL_DIR` serves a packaged directory directly,
without the registry (benchmarks, tests); the version label is then `MLP_MODEL_VERSION` if numeric, else 0.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import onnxruntime as ort

from core import env
from core.policy import policy
from services.model_runtime.classifier import (
    TextClassifier,
    execution_providers,
    preload_cuda_libraries,
    provider_fallback,
)
from services.model_runtime.runtimes import load_classifier

logger = logging.getLogger("mlp.model_server")

WARMUP_TEXT = "A warm-up sentence, long enough to exercise the tokenizer and the encoder a little."


class ModelLoadError(RuntimeError):
    """The version could not be resolved, fetched or loaded; the message says which and what to do."""


@dataclass(frozen=True)
class LoadedModel:
    name: str
    version: int
    model_dir: Path
    classifier: TextClassifier
    load_seconds: float


def version_dir_from_env(name: str) -> tuple[Path, int]:
    """The folder of the version this server serves and its number: the registry version `MLP_MODEL_VERSION` names
    (resolved, downloaded to the model cache, verified against its signed manifest), or `MLP_MODEL_DIR` (labelled
    `MLP_MODEL_VERSION` when numeric, else 0)."""
    ref = env.MODEL_VERSION.get()
    override = env.MODEL_DIR.get()
    if override:
        return override, int(ref) if ref.isdigit() else 0
    if not ref:
        raise ModelLoadError(
            f"set {env.MODEL_VERSION.name} (a registered version of {name}: a number or an alias) or "
            f"{env.MODEL_DIR.name} (a packaged folder)"
        )
    from services.registry.client import RegistryError, download_version, resolve_version

    try:
        version = resolve_version(ref, name)
        return download_version(version, name, cache_root=model_cache()), version
    except RegistryError as exc:
        raise ModelLoadError(f"cannot serve {name} {ref!r}: {exc}") from exc


def load_from_env(name: str | None = None) -> LoadedModel:
    """The version this server serves of model `name` (default MLP_MODEL_NAME, else the default model), loaded and
    warmed up."""
    name = name or env.MODEL_NAME.get() or policy().release.default_model
    started = time.monotonic()
    model_dir, version = version_dir_from_env(name)
    serving = policy().serving
    try:
        device = env.DEVICE.get()
        providers, warning = execution_providers(
            device, env.GPU_MEMORY_LIMIT_BYTES.get(), ort.get_available_providers()
        )
        if warning is None and device == "cuda":
            warning = preload_cuda_libraries()
        if warning:
            logger.warning(warning)
        classifier = load_classifier(
            model_dir,
            threads=serving.ort_intra_op_threads,
            inter_op_threads=serving.ort_inter_op_threads,
            providers=providers,
        )
        fallback = provider_fallback(device, classifier.provider)
        if fallback and not warning:
            logger.warning(fallback)
    except (ValueError, OSError) as exc:
        raise ModelLoadError(f"cannot load {name} v{version} from {model_dir}: {exc}") from exc
    warm_up(classifier, model_dir)
    took = time.monotonic() - started
    logger.info("serving %s v%s (%s, %s) on %s from %s; loaded and warmed up in %.1fs", name, version,
                classifier.variant, classifier.runtime, classifier.provider, model_dir, took)  # fmt: skip
    return LoadedModel(name, version, model_dir, classifier, took)


def model_cache() -> Path:
    """Where this server keeps downloaded versions: set by its runtime (pod volume, local state), else a temp dir."""
    cache = env.MODEL_CACHE.get()
    if cache is not None:
        return cache
    state = env.STATE_DIR.get()
    return state / "models" if state is not None else Path(tempfile.gettempdir()) / "mlp-models"


def warm_up(classifier: TextClassifier, model_dir: Path, rounds: int = 3) -> None:
    """Run the first inferences before the server reports ready: ONNX Runtime allocates and optimises lazily."""
    texts = [WARMUP_TEXT]
    example = model_dir / "input_example.json"
    if example.is_file():
        try:
            texts = list(json.loads(example.read_text())["texts"]) or texts
        except (ValueError, KeyError, TypeError):
            logger.warning("%s is not {'texts': [...]}: warming up with a built-in text", example)
    batch = (texts * policy().serving.max_batch_size)[: policy().serving.max_batch_size]
    for _ in range(rounds):
        classifier.predict(texts[:1])
        classifier.predict(batch)
    classifier.count_tokens(texts[:1])
