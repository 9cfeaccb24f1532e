"""The packaged variants and why they differ. Each difference is real, not a flag that fakes a result."""

from __future__ import annotations

from dataclasses import dataclass

# The head's inverse regularisation strength (scikit-learn's C), chosen on the validation split (0.25-8 swept): 0.5 is
# best for fp32 and keeps int8 within noise of it.
HEAD_C = 0.5


@dataclass(frozen=True)
class Variant:
    name: str
    quantisation: str  # which encoder: "fp32" | "int8" (ONNX) | "gguf-f16" | "gguf-q8_0" | "gguf-q4_k_m" (llama.cpp)
    padding: str  # "longest" (pad to the longest text in a batch) | "fixed" (always max_seq_tokens)
    description: str
    few_shot_per_class: int = 0  # 0: head trained on the whole training split
    max_seq_tokens: int = 0  # 0: policy.serving.max_seq_tokens
    head_of: str = ""  # reuse this variant's trained head (same encoder graph, so the same embeddings)
    head_c: float = HEAD_C  # the head's inverse regularisation strength


VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant("fp32", "fp32", "longest", "fp32 encoder, head trained on the full training split"),
        Variant(
            "int8", "int8", "longest", "int8 dynamic per-channel quantised encoder, head retrained on its embeddings"
        ),
        Variant("gguf-f16", "gguf-f16", "longest", "F16 GGUF encoder on llama.cpp, head trained on its embeddings"),
        Variant("gguf-q8_0", "gguf-q8_0", "longest", "Q8_0 GGUF encoder on llama.cpp, head trained on its embeddings"),
        Variant(
            "gguf-q4_k_m",
            "gguf-q4_k_m",
            "longest",
            "Q4_K_M GGUF encoder on llama.cpp (fallback types where rows are not 256 wide), head on its embeddings",
        ),
        Variant(
            "weak",
            "fp32",
            "longest",
            "fp32 encoder, head trained on 3 examples per class: really worse",
            few_shot_per_class=3,
        ),
        Variant(
            "underconfident",
            "fp32",
            "longest",
            "fp32 encoder, head refit with four times the regularisation (C 0.13, a retraining slip): accurate within "
            "the gate's tolerance, but its answers are about 0.065 less confident",
            head_c=0.13,
        ),
        Variant(
            "heavy",
            "fp32",
            "fixed",
            "fp32 encoder and head, padding every request to 256 tokens: same answers, really slower",
            max_seq_tokens=256,
            head_of="fp32",
        ),
    )
}


# What `make demo` and the integration suite register. The other GGUF forms (F16, Q4_K_M) are the benchmark's: `make
# bench` and the tests that compare encoders package them when missing, so `make test` does not wait for them.
REGISTERED: tuple[str, ...] = ("fp32", "int8", "gguf-q8_0", "weak", "heavy", "underconfident")
# Names `mlp model package --variant` takes beside a variant's own.
SETS: dict[str, tuple[str, ...]] = {"all": tuple(VARIANTS), "registered": REGISTERED}


def resolve(names: list[str]) -> list[str]:
    """Variant names from variant or set names; an unknown one is a ValueError naming the choices."""
    out: list[str] = []
    for name in names:
        if name in SETS:
            out += SETS[name]
        elif name in VARIANTS:
            out.append(name)
        else:
            raise ValueError(f"unknown variant {name!r}; choose from {', '.join([*VARIANTS, *SETS])}")
    return out


def build_order(names: list[str]) -> list[str]:
    """Variants whose head comes from another are built after it."""
    return sorted(set(names), key=lambda n: (bool(VARIANTS[n].head_of), n))
