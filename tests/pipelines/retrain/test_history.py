"""The breakers' history read from the registry's versions: which retrained version failed its gate unreviewed."""

from __future__ import annotations

from types import SimpleNamespace

from pipelines.retrain.run import REVIEWED_TAG, TRIGGER_TAG, unreviewed_failed_gate


def version(number: int, created: int, **tags: str) -> SimpleNamespace:
    return SimpleNamespace(version=str(number), creation_timestamp=str(created), tags=tags)


FAILED = {TRIGGER_TAG: "drift", "release.status": "gate_failed", "release.reason": "promotion gate failed: gain"}


def test_the_last_retrained_version_failing_its_gate_is_named() -> None:
    versions = [version(1, 100), version(2, 200, **{TRIGGER_TAG: "drift"}), version(3, 300, **FAILED)]
    found = unreviewed_failed_gate(versions)
    assert found is not None and found.startswith("v3") and "gain" in found


def test_a_reviewed_failure_or_a_later_retrained_version_clears_it() -> None:
    assert unreviewed_failed_gate([version(3, 300, **FAILED, **{REVIEWED_TAG: "alice"})]) is None
    later_ok = version(4, 400, **{TRIGGER_TAG: "manual", "release.status": "succeeded"})
    assert unreviewed_failed_gate([version(3, 300, **FAILED), later_ok]) is None
    # Versions that no retraining made do not count, however they ended.
    assert unreviewed_failed_gate([version(5, 500, **{"release.status": "gate_failed"})]) is None
