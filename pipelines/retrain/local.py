"""The local environment's retraining workspace: the checkout's build folder, the shared model and embedding caches
under `.state/`, and the release lock that tells whether a release of the model runs."""

from __future__ import annotations

from pathlib import Path

from infra.local.paths import build_dir, model_cache, sub
from pipelines.release.store import ReleaseLock
from pipelines.retrain.run import Workspace
from services.registry import client as registry


def event_log() -> Path:
    path = build_dir() / "reports" / "retraining.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def running_release() -> str | None:
    lock = ReleaseLock(registry.model_name())
    if not lock.is_held():
        return None
    owner = lock.owner()
    return f"v{owner.get('version', '?')}, release {owner.get('release_id', '?')}, since {owner.get('since', '?')}"


def workspace() -> Workspace:
    return Workspace(
        model_cache=model_cache(),
        embedding_cache=sub("embedding-cache"),
        builds=build_dir() / "models",
        events=event_log(),
        running_release=running_release,
    )
