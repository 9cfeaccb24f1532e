"""Embeddings shared between the variants of one build that use the same encoder and input shaping."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipelines.packaging.build import SharedEmbeddings, embed_batches


class Counting:
    """An encoder stand-in: a text's embedding is its length and its first character, every call recorded."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def embed(self, texts: list[str]) -> np.ndarray:
        self.calls.append(list(texts))
        return np.array([[len(t), ord(t[0])] for t in texts], dtype=np.float32)


def test_a_second_variant_on_the_same_encoder_embeds_nothing_again(tmp_path: Path) -> None:
    encoder = tmp_path / "encoder.onnx"
    encoder.write_bytes(b"graph")
    texts = [f"text {i}" for i in range(150)]
    shared = SharedEmbeddings()
    first, second = Counting(), Counting()
    a = embed_batches(shared.wrap(first, encoder, 128, "longest"), texts)
    b = embed_batches(shared.wrap(second, encoder, 128, "longest"), texts)
    assert [len(c) for c in first.calls] == [64, 64, 22] and second.calls == []
    assert np.array_equal(a, b) and np.array_equal(a, Counting().embed(texts))
    # Reordered or partly new texts: only the batch with a new text is computed, the answers stay in order.
    third = Counting()
    c = shared.wrap(third, encoder, 128, "longest").embed(["new", texts[3]])
    assert third.calls == [["new", texts[3]]] and c.tolist() == [[3, ord("n")], [6, ord("t")]]


def test_another_encoder_or_input_shaping_is_embedded_apart(tmp_path: Path) -> None:
    fp32, int8 = tmp_path / "fp32.onnx", tmp_path / "int8.onnx"
    fp32.write_bytes(b"fp32 graph")
    int8.write_bytes(b"int8 graph")
    shared = SharedEmbeddings()
    shared.wrap(Counting(), fp32, 128, "longest").embed(["x"])
    for encoder, seq, padding in ((int8, 128, "longest"), (fp32, 256, "longest"), (fp32, 128, "max_length")):
        other = Counting()
        shared.wrap(other, encoder, seq, padding).embed(["x"])
        assert other.calls == [["x"]], (encoder.name, seq, padding)
