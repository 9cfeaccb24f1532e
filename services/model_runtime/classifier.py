"""The serving runtime of a packaged model: ONNX Runtime encoder + logistic-regression head + fast tokenizer.

No PyTorch here, and no MLflow: the model server, the gate and the drift job all load a model directory
(`model.onnx`, `tokenizer.json`, `model_config.json`) through this class and nothing else.
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

CONFIG_FILE = "model_config.json"
ONNX_FILE = "model.onnx"  # the encoder for ONNX Runtime
GGUF_FILE = "model.gguf"  # the encoder for llama.cpp (services/model_runtime/gguf.py)
_WORD = re.compile(r"[a-z]+")


@dataclass(frozen=True)
class Prediction:
    label: str
    scores: dict[str, float]
    confidence: float


@dataclass(frozen=True)
class ModelConfig:
    """What `model_config.json` holds: written by the packaging step, read here."""

    variant: str
    labels: list[str]
    max_seq_tokens: int
    padding: str  # "longest": pad to the longest text in a batch; "fixed": always to max_seq_tokens
    coef: np.ndarray  # (n_labels, dim) head weights
    intercept: np.ndarray  # (n_labels,)

    @classmethod
    def read(cls, model_dir: Path) -> ModelConfig:
        path = model_dir / CONFIG_FILE
        try:
            raw: dict[str, Any] = json.loads(path.read_text())
            coef = np.asarray(raw["head"]["coef"], dtype=np.float32)
            intercept = np.asarray(raw["head"]["intercept"], dtype=np.float32)
            config = cls(
                str(raw["variant"]),
                list(raw["labels"]),
                int(raw["max_seq_tokens"]),
                str(raw["padding"]),
                coef,
                intercept,
            )
        except (OSError, KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path}: not a valid model config ({exc}); re-run `mlp model package`") from exc
        if config.padding not in ("longest", "fixed"):
            raise ValueError(f"{path}: padding must be 'longest' or 'fixed', got {config.padding!r}")
        if coef.shape[0] != len(config.labels) or intercept.shape != (len(config.labels),):
            raise ValueError(f"{path}: head shape {coef.shape} does not match {len(config.labels)} labels")
        return config


def session_options(intra_op_threads: int, inter_op_threads: int) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = inter_op_threads
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Several servers share 2 cores: spinning threads nearly double the CPU per request (ARCHITECTURE.md).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return options


CPU_PROVIDER = "CPUExecutionProvider"
CUDA_PROVIDER = "CUDAExecutionProvider"


def execution_providers(
    device: str, gpu_memory_limit_bytes: int | None, available: list[str]
) -> tuple[list[str | tuple[str, dict[str, str]]], str | None]:
    """ONNX Runtime providers for a device, and a warning when the device asked for cannot be used.

    `cuda` uses the CUDA provider (GPU memory capped at the pod's limit) with the CPU provider behind it for the
    operators CUDA lacks; without a CUDA-enabled ONNX Runtime or a GPU it serves on the CPU and says so.
    """
    if device == "cpu":
        return [CPU_PROVIDER], None
    if device != "cuda":
        raise ValueError(f"device {device!r}: choose cpu or cuda")
    if CUDA_PROVIDER not in available:
        return [CPU_PROVIDER], (
            f"device cuda requested but ONNX Runtime offers only {available}: serving on the CPU. "
            "Install onnxruntime-gpu in the image and schedule the pod on a GPU node."
        )
    options = {} if gpu_memory_limit_bytes is None else {"gpu_mem_limit": str(gpu_memory_limit_bytes)}
    return [(CUDA_PROVIDER, options), CPU_PROVIDER], None


def provider_fallback(device: str, running: str) -> str | None:
    """A warning when a session asked to run on the GPU came up on another provider.

    The CUDA build of ONNX Runtime offers its CUDA provider on any machine; without a visible GPU or driver the
    session falls back to the CPU when it is created, so only the session says where the model really runs.
    """
    if device != "cuda" or running == CUDA_PROVIDER:
        return None
    return (
        f"device cuda requested but the session runs on {running}: no usable GPU. Check that the pod requests "
        "nvidia.com/gpu and that `nvidia-smi` works on its node; serving on the CPU meanwhile."
    )


def preload_cuda_libraries() -> str | None:
    """Load the CUDA and cuDNN libraries that the GPU image installs from PyPI (requirements/gpu.lock), which are
    outside the dynamic loader's search path; a warning when they cannot be loaded."""
    preload = getattr(ort, "preload_dlls", None)
    if preload is None:
        return None
    try:
        preload()
    except OSError as exc:
        return f"CUDA libraries could not be loaded ({exc}): the CUDA provider will not start"
    return None


class TextClassifier(ABC):
    """Texts in, labels and scores out: an encoder (one implementation per runtime) and the shared head.

    The tokenizer (`tokenizer.json`) is the same for every runtime of a model: it counts tokens for drift and the
    inference log, and the runtimes that take token ids (llama.cpp) are fed its ids, so both see the same input.
    """

    runtime = ""  # "onnx" | "llama.cpp": which engine runs the encoder (metrics, logs, the gate report)

    def __init__(self, model_dir: Path, config: ModelConfig, tokenizer: Tokenizer):
        self.model_dir = model_dir
        self.config = config
        self.tokenizer = tokenizer
        self._vocab = tokenizer.get_vocab()
        # Token counts for drift are measured before truncation and padding.
        self._counting = Tokenizer.from_str(tokenizer.to_str())
        self._counting.no_truncation()
        self._counting.no_padding()

    @staticmethod
    def read_tokenizer(model_dir: Path, config: ModelConfig) -> Tokenizer:
        tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        tokenizer.enable_truncation(max_length=config.max_seq_tokens)
        if config.padding == "fixed":
            tokenizer.enable_padding(length=config.max_seq_tokens)
        else:
            tokenizer.enable_padding()  # to the longest text in the batch
        return tokenizer

    @property
    def provider(self) -> str:
        """Where the encoder runs (ONNX Runtime's execution provider, or the CPU for llama.cpp)."""
        return CPU_PROVIDER

    @abstractmethod
    def embed(self, texts: list[str]) -> np.ndarray:
        """L2-normalised sentence embeddings (n x dim), mean-pooled over the text's tokens."""

    @property
    def labels(self) -> list[str]:
        return self.config.labels

    @property
    def variant(self) -> str:
        return self.config.variant

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        logits = self.embed(texts) @ self.config.coef.T + self.config.intercept
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return np.asarray(exp / exp.sum(axis=1, keepdims=True))

    def predict(self, texts: list[str]) -> list[Prediction]:
        probabilities = self.predict_proba(texts)
        labels = self.config.labels
        out = []
        for row in probabilities:
            best = int(row.argmax())
            out.append(
                Prediction(labels[best], {lab: float(p) for lab, p in zip(labels, row, strict=True)}, float(row[best]))
            )
        return out

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Tokens per text before truncation and padding (special tokens included)."""
        return [len(e.ids) for e in self._counting.encode_batch(texts)] if texts else []

    def vocab_hit_rate(self, text: str) -> float:
        """Share of the text's words that are whole tokens in the vocabulary (1.0 for a text with no words)."""
        words = _WORD.findall(text.lower())
        if not words:
            return 1.0
        return sum(1 for w in words if w in self._vocab) / len(words)


class OnnxTextClassifier(TextClassifier):
    """The encoder on ONNX Runtime. Thread-safe for `predict` (ONNX Runtime sessions are)."""

    runtime = "onnx"

    def __init__(self, model_dir: Path, config: ModelConfig, session: ort.InferenceSession, tokenizer: Tokenizer):
        super().__init__(model_dir, config, tokenizer)
        self.session = session
        self._input_names = {i.name for i in session.get_inputs()}

    @classmethod
    def load(
        cls,
        model_dir: Path | str,
        intra_op_threads: int = 1,
        inter_op_threads: int = 1,
        providers: list[str | tuple[str, dict[str, str]]] | None = None,
    ) -> OnnxTextClassifier:
        model_dir = Path(model_dir)
        config = ModelConfig.read(model_dir)
        for name in (ONNX_FILE, "tokenizer.json"):
            if not (model_dir / name).is_file():
                raise ValueError(f"{model_dir}: missing {name}; re-run `mlp model package`")
        session = ort.InferenceSession(
            str(model_dir / ONNX_FILE),
            sess_options=session_options(intra_op_threads, inter_op_threads),
            providers=providers or [CPU_PROVIDER],
        )
        return cls(model_dir, config, session, cls.read_tokenizer(model_dir, config))

    @property
    def provider(self) -> str:
        """The execution provider that runs the graph (the first of the session's providers)."""
        return str(self.session.get_providers()[0])

    def _feeds(self, texts: list[str]) -> dict[str, np.ndarray]:
        encodings = self.tokenizer.encode_batch(texts)
        feeds = {
            "input_ids": np.asarray([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.asarray([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.asarray([e.type_ids for e in encodings], dtype=np.int64),
        }
        return {k: v for k, v in feeds.items() if k in self._input_names}

    def embed(self, texts: list[str]) -> np.ndarray:
        """L2-normalised sentence embeddings (n x 384): mean pooling is inside the exported graph."""
        if not texts:
            return np.zeros((0, self.config.coef.shape[1]), dtype=np.float32)
        (embeddings,) = self.session.run(["sentence_embedding"], self._feeds(texts))
        return np.asarray(embeddings, dtype=np.float32)
