"""Load the ONE packaged generator a generate server serves (no BentoML here)."""

from __future__ import annotations

from core import env
from core.policy import Generation
from services.model_runtime.generator import GgufGenerator


class GeneratorLoadError(RuntimeError):
    """The generator could not be loaded; the message says what to do."""


def load_generator(g: Generation, model_name: str) -> tuple[GgufGenerator, int]:
    """The generator to serve and its version label: the registry version MLP_MODEL_VERSION names (a number or an
    alias), fetched and verified against its signed manifest; or, with MLP_MODEL_DIR, that packaged folder
    (labelled MLP_MODEL_VERSION when numeric, else 0)."""
    model_dir = env.MODEL_DIR.get()
    ref = env.MODEL_VERSION.get()
    if model_dir is None:
        if not ref:
            raise GeneratorLoadError(
                f"set {env.MODEL_VERSION.name} (a registered version of {model_name}) or {env.MODEL_DIR.name} (a "
                "packaged folder: `mlp model package-generator` writes build/models/gemma3-270m)"
            )
        from services.model_server.loading import model_cache
        from services.registry.client import RegistryError, download_version, resolve_version

        try:
            version = resolve_version(ref, model_name)
            model_dir = download_version(version, model_name, cache_root=model_cache())
        except RegistryError as exc:
            raise GeneratorLoadError(f"cannot serve {model_name} {ref!r}: {exc}") from exc
        ref = str(version)
    try:
        generator = GgufGenerator.load(model_dir, context_tokens=g.context_tokens, threads=g.threads)
    except (ValueError, OSError) as exc:
        raise GeneratorLoadError(f"cannot load the generator in {model_dir}: {exc}") from exc
    return generator, int(ref) if ref.isdigit() else 0
