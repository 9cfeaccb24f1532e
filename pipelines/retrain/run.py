"""`mlp model retrain`: breakers, then build from a registered version, then register all-or-nothing with lineage.

Every outcome (refused, registered) is appended to the workspace's retraining log: `build/reports/retraining.jsonl`
locally (`pipelines.retrain.local`), the Job's log in the cluster (`pipelines.retrain.job`); the log an on-call
engineer reads (runbooks/retraining-refused.md). The breakers' history is the registry itself: the versions that
carry a `retrain.trigger` tag and when they were created, so it holds wherever the registry does.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from core.clock import utcnow
from core.policy import policy
from pipelines.registry.register import Registered, register
from pipelines.release.state import Outcome
from pipelines.retrain import breakers, train
from services.registry import client as registry

Trigger = Literal["manual", "drift"]
TRIGGER_TAG = "retrain.trigger"
GATE_FAILED = Outcome.GATE_FAILED.value
# Set by a person on a retrained version that failed its gate once they have looked: drift may retrain again.
REVIEWED_TAG = "retrain.reviewed"
Progress = Callable[[str], None]


@dataclass(frozen=True)
class DriftAlert:
    """The alert that asked for a retraining (recorded as lineage)."""

    fingerprint: str
    score: str


def drift_alert(trigger: str, fingerprint: str, score: str) -> DriftAlert | None:
    """The alert a retraining names, checked: only a drift trigger names one. ValueError says what is wrong."""
    if trigger not in ("manual", "drift"):
        raise ValueError(f"unknown trigger {trigger!r}; choose manual or drift")
    if trigger != "drift":
        if fingerprint or score:
            raise ValueError("--alert-fingerprint and --drift-score describe a drift alert: use --trigger drift")
        return None
    return DriftAlert(fingerprint, score)


@dataclass(frozen=True)
class Workspace:
    """Where a retraining works and what it asks of where it runs."""

    model_cache: Path  # downloaded versions
    embedding_cache: Path  # the encoder's embeddings of the data sets, by encoder and data
    builds: Path  # the new package is built under it
    events: Path  # the retraining log (JSON lines), appended
    running_release: Callable[[], str | None]  # the release of the model that runs now, described; None if none


@dataclass(frozen=True)
class RetrainOutcome:
    registered: Registered
    parent_version: int
    result: train.Retrained
    alias: str | None

    def summary(self) -> dict[str, Any]:
        """What `mlp model retrain --json` and the retraining Job print: the version, its parent, accuracy."""
        return {
            "name": self.registered.name,
            "version": self.registered.version,
            "parent_version": self.parent_version,
            "reused": self.registered.reused,
            "alias": self.alias,
            "accuracy": {s: {"before": b, "after": a} for s, (b, a) in self.result.accuracy_table().items()},
        }


def record(log: Path, event: str, **fields: object) -> None:
    line = {"at": utcnow(), "event": event, "model": registry.model_name(), **fields}
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(line, sort_keys=True) + "\n")


def retrained_at(versions: list[Any]) -> list[datetime]:
    """When each earlier retrained version was registered (the registry's creation time)."""
    return [datetime.fromtimestamp(int(v.creation_timestamp) / 1000, UTC) for v in versions if v.tags.get(TRIGGER_TAG)]


def unreviewed_failed_gate(versions: list[Any]) -> str | None:
    """The last retrained version, described, if its gate failed and no one has reviewed it; else None."""
    retrained = [v for v in versions if v.tags.get(TRIGGER_TAG)]
    if not retrained:
        return None
    last = max(retrained, key=lambda v: int(v.creation_timestamp))
    if last.tags.get("release.status") != GATE_FAILED or last.tags.get(REVIEWED_TAG):
        return None
    return f"v{last.version}: {last.tags.get('release.reason', 'gate failed')}"


def lineage_tags(trigger: Trigger, parent: int, result: train.Retrained, alert: DriftAlert | None) -> dict[str, str]:
    lineage = json.loads((result.out / "lineage.json").read_text())
    tags = {
        TRIGGER_TAG: trigger,
        **({"retrain.alert_fingerprint": alert.fingerprint, "retrain.drift_score": alert.score} if alert else {}),
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


def retrain(
    parent_ref: str,
    trigger: Trigger,
    alias: str | None,
    progress: Progress,
    workspace: Workspace,
    alert: DriftAlert | None = None,
) -> RetrainOutcome:
    """Refuse (breakers.RetrainRefused) or build and register a retrained version of `parent_ref`."""
    registry.check_mlflow()
    parent = registry.resolve_version(parent_ref)
    versions = registry.list_versions()
    refusal = breakers.check(
        policy().retraining,
        now=datetime.now(UTC),
        retrained_at=retrained_at(versions),
        running_release=workspace.running_release(),
        labelled=len(train.shifted_training_examples()),
        failed_gate=unreviewed_failed_gate(versions) if trigger == "drift" else None,
    )
    alert_fields = {"alert_fingerprint": alert.fingerprint, "drift_score": alert.score} if alert else {}
    if refusal is not None:
        record(
            workspace.events,
            "refused",
            breaker=refusal.breaker,
            reason=refusal.reason,
            parent_version=parent,
            trigger=trigger,
            **alert_fields,
        )
        raise breakers.RetrainRefused(refusal)
    progress(f"retraining from {registry.model_name()} v{parent} (trigger: {trigger})")
    parent_dir = registry.download_version(parent, cache_root=workspace.model_cache)
    out = workspace.builds / f"retrained-from-v{parent}"
    result = train.build(parent_dir, out, workspace.embedding_cache, progress)
    progress(f"registering {out.name} with its lineage (all or nothing)")
    tags = lineage_tags(trigger, parent, result, alert)
    registered = register(out, alias=alias, progress=progress, extra_tags=tags)
    record(
        workspace.events,
        "registered",
        version=registered.version,
        reused=registered.reused,  # the same package was already registered (same input_hash): not made twice
        parent_version=parent,
        trigger=trigger,
        alias=alias,
        **alert_fields,
        accuracy={split: {"before": b, "after": a} for split, (b, a) in result.accuracy_table().items()},
    )
    return RetrainOutcome(registered, parent, result, alias)
