"""What a RAG version's release checks before its canary starts (`RagReleaseGate`, pipelines/release/deps.py).

A RAG version was gated on quality and latency before it could be registered (`mlp rag gate`, decision 0182); the
release does not measure it again. It checks that the version it pulled is the build that gate judged, and that the
embedder and generator it pins are the versions served: the local runtime serves one version of each, shared by the
stable RAG version and the candidate, so a candidate pinned to others would answer with 503s or without generation
for reasons that are not its own.
"""

from __future__ import annotations

from collections.abc import Callable

from pipelines.registry.register_rag import VERSION_SHA_TAG
from services.model_runtime.rag import Pinned, RagConfig

ServedVersion = Callable[[str], int | None]  # the version a catalogue model serves, None when it is not served


def check_release(config: RagConfig, tags: dict[str, str], served: ServedVersion) -> list[str]:
    """Why the version cannot go to a canary; empty when it can."""
    failures = []
    if tags.get("gate") != "passed" or tags.get(VERSION_SHA_TAG) != config.sha256():
        failures.append(
            f"the registered build is not the one its gate passed (tag {VERSION_SHA_TAG} "
            f"{tags.get(VERSION_SHA_TAG, 'absent')!s:.12} vs {config.sha256():.12}): "
            "register it with `mlp rag register`"
        )
    for role, pinned in (("embedder", config.embedder), ("generator", config.generator)):
        failures += _pin_served(role, pinned, served(pinned.model))
    return failures


def _pin_served(role: str, pinned: Pinned, served: int | None) -> list[str]:
    if served == pinned.version:
        return []
    now = "nothing is served" if served is None else f"v{served} is served"
    return [
        f"it pins {role} {pinned.model} v{pinned.version} but {now}: both versions of the RAG model share one "
        f"{role}; release a version built on the served one, or replace the RAG version after its gate with "
        "`mlp rag serve VERSION` (which serves what it pins)"
    ]
