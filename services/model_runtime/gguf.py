"""The encoder on llama.cpp (llama-cpp-python): a GGUF file of the same encoder, quantised or not.

It is fed the token ids of the model's own `tokenizer.json`, truncated exactly as the ONNX runtime truncates, so
a GGUF version and an ONNX version of one model see the same input and differ only in the encoder's arithmetic.
Mean pooling over the text's tokens is llama.cpp's (`LLAMA_POOLING_TYPE_MEAN`); the vectors are L2-normalised
here, as the ONNX graph does.

One text per decode: llama.cpp puts a batch of sequences into one micro-batch whose attention spans all of its
tokens (masked), so on this machine's 2 cores 32 texts per decode embedded 68 texts/s and one text per decode 150
(MiniLM F16, validation texts; docs/quantisation.md).
"""

from __future__ import annotations

import threading
from pathlib import Path

import llama_cpp
import numpy as np
from tokenizers import Tokenizer

from services.model_runtime.classifier import GGUF_FILE, ModelConfig, TextClassifier


class GgufTextClassifier(TextClassifier):
    """Thread-safe for `predict`: the one llama.cpp context decodes one text at a time."""

    runtime = "llama.cpp"

    def __init__(self, model_dir: Path, config: ModelConfig, llm: llama_cpp.Llama, tokenizer: Tokenizer):
        super().__init__(model_dir, config, tokenizer)
        self.llm = llm
        self._lock = threading.Lock()

    @classmethod
    def load(cls, model_dir: Path | str, threads: int = 1) -> GgufTextClassifier:
        model_dir = Path(model_dir)
        config = ModelConfig.read(model_dir)
        for name in (GGUF_FILE, "tokenizer.json"):
            if not (model_dir / name).is_file():
                raise ValueError(f"{model_dir}: missing {name}; re-run `mlp model package`")
        llm = llama_cpp.Llama(
            model_path=str(model_dir / GGUF_FILE),
            embedding=True,
            pooling_type=llama_cpp.LLAMA_POOLING_TYPE_MEAN,
            # A whole text in one micro-batch: the encoder is not causal, it must see every token at once.
            n_ctx=config.max_seq_tokens,
            n_batch=config.max_seq_tokens,
            n_ubatch=config.max_seq_tokens,
            n_seq_max=1,
            n_threads=threads,
            n_threads_batch=threads,
            verbose=False,
        )
        if llm.n_embd() != config.coef.shape[1]:
            raise ValueError(
                f"{model_dir}: the GGUF encoder gives {llm.n_embd()}-dim vectors, the head expects "
                f"{config.coef.shape[1]}; package the head on this encoder's embeddings"
            )
        tokenizer = cls.read_tokenizer(model_dir, config)
        tokenizer.no_padding()  # llama.cpp takes each text at its own length
        return cls(model_dir, config, llm, tokenizer)

    def embed(self, texts: list[str]) -> np.ndarray:
        dim = self.config.coef.shape[1]
        if not texts:
            return np.zeros((0, dim), dtype=np.float32)
        out = np.vstack([self._embed_one(e.ids) for e in self.tokenizer.encode_batch(texts)])
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return np.asarray(out / np.clip(norms, 1e-12, None), dtype=np.float32)

    def _embed_one(self, ids: list[int]) -> np.ndarray:
        batch = llama_cpp.llama_batch_init(len(ids), 0, 1)
        try:
            for pos, token in enumerate(ids):
                batch.token[pos] = token
                batch.pos[pos] = pos
                batch.n_seq_id[pos] = 1
                batch.seq_id[pos][0] = 0
                batch.logits[pos] = True  # an embedding model outputs every token; the pooling reads them
            batch.n_tokens = len(ids)
            with self._lock:
                code = llama_cpp.llama_decode(self.llm.ctx, batch)
                if code != 0:
                    raise RuntimeError(f"llama.cpp could not decode a text of {len(ids)} tokens (code {code})")
                pointer = llama_cpp.llama_get_embeddings_seq(self.llm.ctx, 0)
                return np.ctypeslib.as_array(pointer, shape=(self.llm.n_embd(),)).copy()
        finally:
            llama_cpp.llama_batch_free(batch)
