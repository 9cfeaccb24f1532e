"""`mlp model retrain`: breakers, then build from a registered version, then register all-or-nothing with lineage.

Every outcome (refused, registered) is appended to `build/reports/retraining.jsonl`, the log an on-call engineer
reads (runbooks/retraining-refused.md). The breakers' history is the registry itself: the versions that carry a
`retrain.trigger` tag and when they were created, so it holds wherever the registry does.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from core.clock import utcnow
from core.policy import policy
from infra.local.paths import build_dir, model_cache
from pipelines.registry.register import Registered, register
from pipelines.release.store import ReleaseLock
from pipelines.retrain import breakers, train
from services.registry import client as registry

Trigger = Literal["manual", "drift"]
TRIGGER_TAG = "retrain.trigger"
Progress = Callable[[str], None]


@dataclass(frozen=True)
class RetrainOutcome:
    registered: Registered
    parent_version: int
    result: train.Retrained
    alias: str | None


def event_log() -> Path:
    path = build_dir() / "reports" / "retraining.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def record(event: str, **fields: object) -> None:
    line = {"at": utcnow(), "event": event, "model": registry.model_name(), **fields}
    with event_log().open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(line, sort_keys=True) + "\n")


def retrained_at() -> list[datetime]:
    """When each earlier retrained version was registered (the registry's creation time)."""
    return [
        datetime.fromtimestamp(int(v.creation_timestamp) / 1000, UTC)
        for v in registry.list_versions()
        if v.tags.get(TRIGGER_TAG)
    ]


def running_release() -> str | None:
    lock = ReleaseLock(registry.model_name())
    if not lock.is_held():
        return None
    owner = lock.owner()
    return f"v{owner.get('version', '?')}, release {owner.get('release_id', '?')}, since {owner.get('since', '?')}"


def lineage_tags(trigger: Trigger, parent: int, result: train.Retrained) -> dict[str, str]:
    lineage = json.loads((result.out / "lineage.json").read_text())
    tags = {
        TRIGGER_TAG: trigger,
        "retrain.parent_version": str(parent),
        "retrain.dataset_sha256": lineage["dataset_sha256"],
        "retrain.shifted_dataset_sha256": lineage["shifted_dataset_sha256"],
        "retrain.training_splits": lineage["training_splits"],
        "retrain.evaluation_splits": lineage["evaluation_splits"],
    }
    for split, (before, after) in result.accuracy_table().items():
        tags[f"retrain.accuracy.{split}.before"] = f"{before:.4f}"
        tags[f"retrain.accuracy.{split}.after"] = f"{after:.4f}"
    return tags


def retrain(parent_ref: str, trigger: Trigger, alias: str | None, progress: Progress) -> RetrainOutcome:
    """Refuse (breakers.RetrainRefused) or build and register a retrained version of `parent_ref`."""
    registry.check_mlflow()
    parent = registry.resolve_version(parent_ref)
    refusal = breakers.check(
        policy().retraining,
        now=datetime.now(UTC),
        retrained_at=retrained_at(),
        running_release=running_release(),
        labelled=len(train.shifted_training_examples()),
    )
    if refusal is not None:
        record("refused", breaker=refusal.breaker, reason=refusal.reason, parent_version=parent, trigger=trigger)
        raise breakers.RetrainRefused(refusal)
    progress(f"retraining from {registry.model_name()} v{parent} (trigger: {trigger})")
    parent_dir = registry.download_version(parent, cache_root=model_cache())
    out = build_dir() / "models" / f"retrained-from-v{parent}"
    result = train.build(parent_dir, out, progress)
    progress(f"registering {out.name} with its lineage (all or nothing)")
    registered = register(out, alias=alias, progress=progress, extra_tags=lineage_tags(trigger, parent, result))
    record(
        "registered",
        version=registered.version,
        reused=registered.reused,  # the same package was already registered (same input_hash): not made twice
        parent_version=parent,
        trigger=trigger,
        alias=alias,
        accuracy={split: {"before": b, "after": a} for split, (b, a) in result.accuracy_table().items()},
    )
    return RetrainOutcome(registered, parent, result, alias)
