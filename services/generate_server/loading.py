"""Load the ONE packaged generator a generate server serves (no BentoML here)."""

from __future__ import annotations

from core import env
from core.policy import Generation
from services.model_runtime.generator import GgufGenerator


class GeneratorLoadError(RuntimeError):
    """The generator could not be loaded; the message says what to do."""


def load_generator(g: Generation) -> tuple[GgufGenerator, int]:
    """The generator in MLP_MODEL_DIR and its version label (MLP_MODEL_VERSION when numeric, else 0)."""
    model_dir = env.MODEL_DIR.get()
    if model_dir is None:
        raise GeneratorLoadError(
            f"{env.MODEL_DIR.name} is not set: a generate server serves a packaged folder "
            "(`mlp model package-generator` writes build/models/gemma3-270m)"
        )
    ref = env.MODEL_VERSION.get()
    try:
        generator = GgufGenerator.load(model_dir, context_tokens=g.context_tokens, threads=g.threads)
    except (ValueError, OSError) as exc:
        raise GeneratorLoadError(f"cannot load the generator in {model_dir}: {exc}") from exc
    return generator, int(ref) if ref.isdigit() else 0
