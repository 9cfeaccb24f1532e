"""Load the ONE packaged generator a generate server serves (no BentoML here)."""

from __future__ import annotations

from core.policy import Generation
from services.model_runtime.generator import GgufGenerator


class GeneratorLoadError(RuntimeError):
    """The generator could not be loaded; the message says what to do."""


def load_generator(g: Generation, model_name: str) -> tuple[GgufGenerator, int]:
    """The generator to serve and its version label: the registry version MLP_MODEL_VERSION names (a number or an
    alias), fetched and verified against its signed manifest; or, with MLP_MODEL_DIR, that packaged folder
    (labelled MLP_MODEL_VERSION when numeric, else 0)."""
    from services.model_server.loading import ModelLoadError, version_dir_from_env

    try:
        model_dir, version = version_dir_from_env(model_name)
    except ModelLoadError as exc:
        raise GeneratorLoadError(f"{exc} (`mlp model package-generator` writes build/models/gemma3-270m)") from exc
    try:
        generator = GgufGenerator.load(model_dir, context_tokens=g.context_tokens, threads=g.threads)
    except (ValueError, OSError) as exc:
        raise GeneratorLoadError(f"cannot load the generator in {model_dir}: {exc}") from exc
    return generator, version
