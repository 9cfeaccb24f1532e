"""The drift loop on the real servers, end to end: shifted traffic, the alert, its delivery, a retrained version with
its lineage (better on the shifted domain, within the gate's tolerance in-domain), gated, canaried and promoted; then
each breaker of `mlp model retrain` refusing through the CLI with exit 3 and a log line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core import endpoints
from core.policy import policy
from infra.local.paths import model_cache
from pipelines.data import dataset_sha256, load_shifted_split, load_split, shifted_dataset_sha256
from pipelines.evaluation import evaluate
from pipelines.release.state import Outcome
from pipelines.release.store import ReleaseLock
from pipelines.retrain.local import event_log
from pipelines.retrain.run import TRIGGER_TAG
from services.model_runtime.classifier import OnnxTextClassifier
from services.registry import client as registry
from tests.integration.conftest import mlp, policy_file, without_shadow

pytestmark = pytest.mark.integration
TEN_YEARS = 10 * 365 * 86400


def policy_env(tmp_path: Path, **retraining: int) -> dict[str, str]:
    """A policy file whose `retraining` breakers differ from the committed one by `retraining`, and without the shadow
    phase: a retrained version's shadow measures are recorded, not judged
    (tests/pipelines/release/test_shadow_phase.py)."""

    def edit(raw: dict[str, Any]) -> None:
        raw["retraining"].update(retraining)
        without_shadow(raw)

    return {"MLP_POLICY": str(policy_file(tmp_path, edit))}


# Other tests' earlier retrainings must not trip the breakers of the one that should succeed.
OPEN = {"cooldown_seconds": 0, "max_per_day": 1_000_000}
LOOP_REPORT = "drift-loop.json"


def serve_only(version: int) -> None:
    """`version` serves all traffic and is the champion; no other server, no unfinished release."""
    from infra.local import serving as gateway
    from infra.local.serving import live_model_servers, start_model_server, stop_model_server
    from pipelines.release import service

    if service.status(registry.model_name()).interrupted:
        mlp("release", "abort", "--reason", "drift-loop test setup", check=False, timeout=300)
    start_model_server(version, wait=True)
    gateway.set_weights({version: 100})
    for server in live_model_servers():
        if server.version != version:
            stop_model_server(server.version)
    registry.set_alias(policy().release.champion_alias, version)


@pytest.fixture(scope="module")
def retrained(registered_versions: dict[str, int]) -> Iterator[dict[str, Any]]:
    """The closed loop on the real servers: the int8 version serves as champion (the faster encoder on two
    cores); shifted traffic through the gateway; the drift check pushes its share; Prometheus fires the alert;
    Alertmanager delivers it to the receiver's action route; the receiver spawns the retraining, which registers
    the new version as candidate; MLflow's webhook starts its release; gate, canary and promotion follow."""
    from infra.local import webhook
    from infra.local.paths import build_dir
    from pipelines.drift.push import forget
    from services.webhook import actions

    parent = registered_versions["int8"]
    # The breakers' history is the registry: a state folder reused from an earlier run (not CI's) holds retrained
    # versions whose cooldown would refuse this one. They are this test's own; remove them.
    for earlier in registry.list_versions():
        if earlier.tags.get(TRIGGER_TAG):
            registry.mlflow_client().delete_model_version(registry.model_name(), earlier.version)
    mlp("release", "webhook", "register")  # idempotent; MLflow has cached it long before the alias is set
    serve_only(parent)
    report = build_dir() / "reports" / LOOP_REPORT
    report.unlink(missing_ok=True)
    paused = actions.paused(webhook.state_dir())
    actions.resume(webhook.state_dir())
    try:
        result = mlp(
            "drift", "demo", "--version", str(parent), "--samples", "200",
            "--follow-loop", "--drive-traffic", "20", "--timeout", "1200",
            check=False, timeout=1500,
        )  # fmt: skip
    finally:
        if paused:
            actions.pause(webhook.state_dir(), paused)
        forget(endpoints.pushgateway_url(), registry.model_name(), parent)  # no drift alert left firing
    print(f"\n[drift loop] {result.stdout[-3000:]}")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    out: dict[str, Any] = json.loads(report.read_text())
    out["stdout"] = result.stdout
    yield out
    registry.delete_alias(policy().release.candidate_alias)
    serve_only(registered_versions["fp32"])  # as the session's other tests expect


def test_the_drift_alert_retrains_gates_canaries_and_promotes(
    retrained: dict[str, Any], registered_versions: dict[str, int]
) -> None:
    version = retrained["version"]
    assert retrained["parent_version"] == registered_versions["int8"]
    assert retrained["outcome"] == "succeeded", retrained["reason"]
    assert registry.get_alias(policy().release.champion_alias) == version
    tags = registry.get_version(version).tags
    assert tags["release.status"] == Outcome.PROMOTED.value
    gate = json.loads(Path(tags["release.gate_report"]).read_text())
    assert gate["retrained"] and gate["passed"]
    held_out = [c for c in gate["criteria"] if "held-out" in c["name"]]
    assert len(held_out) == 2 and all(c["passed"] for c in held_out)
    # The numbers a person reads, printed and in the report.
    assert "drift score" in retrained["stdout"] and "release ended after the alert fired" in retrained["stdout"]
    seconds = retrained["seconds_from_alert"]
    assert 0 < seconds["delivered_and_dispatched"] < seconds["registered"] < seconds["release_ended"]


def test_retrained_version_carries_its_lineage(retrained: dict[str, Any], registered_versions: dict[str, int]) -> None:
    tags = registry.get_version(retrained["version"]).tags
    assert retrained["parent_version"] == registered_versions["int8"]
    assert tags["retrain.trigger"] == "drift"
    assert tags["retrain.alert_fingerprint"] and float(tags["retrain.drift_score"]) > policy().drift.threshold
    assert tags["retrain.parent_version"] == str(registered_versions["int8"])
    assert tags["retrain.dataset_sha256"] == tags["dataset_sha256"] == dataset_sha256()
    assert tags["retrain.shifted_dataset_sha256"] == shifted_dataset_sha256()
    assert "nyt_editorials:train" in tags["retrain.training_splits"]
    assert "nyt_editorials:validation,heldout" in tags["retrain.evaluation_splits"]
    for split in ("validation", "heldout", "shifted_validation", "shifted_heldout"):
        assert f"retrain.accuracy.{split}.before" in tags and f"retrain.accuracy.{split}.after" in tags


def test_shifted_domain_improves_and_in_domain_validation_stays_within_the_gate(
    retrained: dict[str, Any], registered_versions: dict[str, int]
) -> None:
    """Measured here again through the serving runtime on the versions as the registry serves them."""
    tolerance = policy().promotion.regression_tolerance_overall
    new_dir = registry.download_version(retrained["version"], cache_root=model_cache())
    old_dir = registry.download_version(registered_versions["int8"], cache_root=model_cache())
    new, old = OnnxTextClassifier.load(new_dir), OnnxTextClassifier.load(old_dir)
    measured = {}
    for split, examples in (
        ("shifted_heldout", load_shifted_split("heldout")),
        ("heldout", load_split("heldout")),
    ):
        measured[split] = (evaluate(old, examples).accuracy, evaluate(new, examples).accuracy)
    print(f"\n[retrain] accuracy before -> after: {retrained['accuracy']}; re-measured: {measured}")
    # What the CLI reported (and tagged) is what the registered versions do.
    for split, (before, after) in measured.items():
        assert retrained["accuracy"][split]["before"] == pytest.approx(before, abs=1e-9)
        assert retrained["accuracy"][split]["after"] == pytest.approx(after, abs=1e-9)
    for split in ("shifted_validation", "shifted_heldout"):
        assert retrained["accuracy"][split]["after"] > retrained["accuracy"][split]["before"], split
    # The gate's criterion: in-domain validation within `promotion.regression_tolerance_overall` of the parent
    # (the parent is the champion here; the gate also judged both held-out splits, see the test above).
    in_domain = retrained["accuracy"]["validation"]
    assert in_domain["after"] >= in_domain["before"] - tolerance


def _refused(tmp_path: Path, parent: int, breaker: str, **retraining: int) -> None:
    result = mlp("model", "retrain", "--from", str(parent), check=False, extra_env=policy_env(tmp_path, **retraining))
    assert result.returncode == 3, result.stderr
    assert f"retraining refused ({breaker})" in " ".join(result.stderr.split())
    last = json.loads(event_log().read_text().splitlines()[-1])
    assert last["event"] == "refused" and last["breaker"] == breaker and last["parent_version"] == parent


def test_cooldown_refuses(retrained: dict[str, Any], tmp_path: Path) -> None:
    _refused(tmp_path, retrained["parent_version"], "cooldown", cooldown_seconds=TEN_YEARS)


def test_max_per_day_refuses(retrained: dict[str, Any], tmp_path: Path) -> None:
    _refused(tmp_path, retrained["parent_version"], "max_per_day", cooldown_seconds=0, max_per_day=1)


def test_too_few_labelled_examples_refuses(retrained: dict[str, Any], tmp_path: Path) -> None:
    _refused(tmp_path, retrained["parent_version"], "min_labelled_examples", **OPEN, min_labelled_examples=100_000)


def test_running_release_refuses(retrained: dict[str, Any], tmp_path: Path) -> None:
    with ReleaseLock(registry.model_name()) as lock:
        lock.acquire("test-retrain-holds-the-release", retrained["parent_version"])
        _refused(tmp_path, retrained["parent_version"], "release_running", **OPEN)
