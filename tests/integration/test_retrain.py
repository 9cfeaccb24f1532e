"""`mlp model retrain` on the real registry: a retrained version with its lineage, better on the shifted domain and
within the gate's tolerance in-domain; and each breaker refusing through the CLI with exit 3 and a log line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.policy import policy
from infra.local.paths import model_cache
from pipelines.data import dataset_sha256, load_shifted_split, load_split, shifted_dataset_sha256
from pipelines.evaluation import evaluate
from pipelines.release.store import ReleaseLock
from pipelines.retrain.run import event_log
from services.model_runtime.classifier import OnnxTextClassifier
from services.registry import client as registry
from tests.integration.conftest import REPO_ROOT, mlp

pytestmark = pytest.mark.integration
TEN_YEARS = 10 * 365 * 86400


def policy_env(tmp_path: Path, **retraining: int) -> dict[str, str]:
    """A policy file whose `retraining` breakers differ from the committed one by `retraining` only."""
    raw = yaml.safe_load((REPO_ROOT / "policy.yaml").read_text())
    raw["retraining"].update(retraining)
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(raw))
    return {"MLP_POLICY": str(path)}


# Other tests' earlier retrainings must not trip the breakers of the one that should succeed.
OPEN = {"cooldown_seconds": 0, "max_per_day": 1_000_000}


@pytest.fixture(scope="module")
def retrained(registered_versions: dict[str, int], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Retrain the int8 challenger (the faster encoder on two cores) through the CLI."""
    parent = registered_versions["int8"]
    env = policy_env(tmp_path_factory.mktemp("policy"), **OPEN)
    result = mlp("model", "retrain", "--from", str(parent), "--json", extra_env=env, timeout=1200)
    out: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    print(f"\n[retrain] {result.stderr[-1500:]}")
    return out


def test_retrained_version_carries_its_lineage(retrained: dict[str, Any], registered_versions: dict[str, int]) -> None:
    tags = registry.get_version(retrained["version"]).tags
    assert retrained["parent_version"] == registered_versions["int8"]
    assert tags["retrain.trigger"] == "manual"
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
    # The gate's criterion: in-domain validation within `promotion.regression_tolerance_overall` of the parent.
    # (Held-out is reported, not judged, as everywhere: docs/model.md; it is printed above.)
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
