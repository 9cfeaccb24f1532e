"""The retraining Job, rehearsed: `mlp render retrain-job`'s manifest run with `podman kube play` from the drift-job
image built here, against the local MLflow, as the release bot, signing with the local key where the cluster signs
with KMS. It registers a retrained version with the alert's lineage, signed so that the platform's public key
verifies it, within the rendered memory limit; a second alert within the cooldown is refused with exit 3 and
nothing registered."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from core import images
from infra.containers.images import DRIFT_JOB, BuiltImage, build
from infra.containers.podman import podman
from modules.k8s.serving import quantity_mib
from pipelines.rehearsal import retrain_job
from pipelines.retrain.job import EXIT_REFUSED
from pipelines.retrain.run import TRIGGER_TAG
from services.registry import client as registry

pytestmark = pytest.mark.integration
FINGERPRINT, SCORE = "5e1f0c2a9b7d4e31", "0.9133"


def forget_retrained_versions() -> None:
    """The breakers' history is the registry: earlier retrained versions (other tests', earlier runs') would trip
    the cooldown of the run that should register."""
    for earlier in registry.list_versions():
        if earlier.tags.get(TRIGGER_TAG):
            registry.mlflow_client().delete_model_version(registry.model_name(), earlier.version)


@pytest.fixture(scope="module")
def image() -> BuiltImage:
    return build(DRIFT_JOB)


@pytest.fixture(scope="module")
def registered(
    local_env: None, registered_versions: dict[str, int], image: BuiltImage
) -> Iterator[tuple[retrain_job.RetrainRun, int]]:
    forget_retrained_versions()
    parent = registered_versions["int8"]
    run = retrain_job.run(parent, image, FINGERPRINT, SCORE)
    mib = run.exited.peak_memory_bytes / 2**20
    print(f"\n[retrain job] exit {run.exited.exit_code} after {run.exited.seconds:.0f}s, peak memory {mib:.0f} MiB")
    yield run, parent
    forget_retrained_versions()


def test_the_job_registers_a_retrained_version_with_the_alerts_lineage(
    registered: tuple[retrain_job.RetrainRun, int],
) -> None:
    run, parent = registered
    assert run.exited.exit_code == 0, run.exited.log
    last = run.events[-1]
    assert last["event"] == "registered" and last["parent_version"] == parent, run.events
    assert (last["alert_fingerprint"], last["drift_score"], last["alias"]) == (FINGERPRINT, SCORE, None)
    registered_version = registry.get_version(last["version"])
    assert not registered_version.aliases, "the rehearsal dropped --candidate (see its changes)"
    tags = registered_version.tags
    assert tags[TRIGGER_TAG] == "drift" and tags["retrain.parent_version"] == str(parent)
    assert (tags["retrain.alert_fingerprint"], tags["retrain.drift_score"]) == (FINGERPRINT, SCORE)
    assert float(tags["retrain.accuracy.shifted_heldout.after"]) > float(
        tags["retrain.accuracy.shifted_heldout.before"]
    )


def test_what_it_registered_verifies_with_the_platforms_key_and_names_the_images_commit(
    registered: tuple[retrain_job.RetrainRun, int], image: BuiltImage
) -> None:
    run, _ = registered
    version = run.events[-1]["version"]
    with tempfile.TemporaryDirectory() as cache:
        model_dir = registry.download_version(version, cache_root=Path(cache))  # raises unless the signature holds
        lineage = (model_dir / "lineage.json").read_text()
    revision = podman(
        "image", "inspect", "--format", '{{index .Labels "org.opencontainers.image.revision"}}', image.ref
    )
    assert re.fullmatch(r"[0-9a-f]{40}", revision.strip())
    assert revision.strip() in lineage, "the version's lineage names the commit its image was built from"


def test_it_stays_within_the_rendered_memory_limit(registered: tuple[retrain_job.RetrainRun, int]) -> None:
    run, _ = registered
    container = run.rendered["spec"]["template"]["spec"]["containers"][0]
    limit = quantity_mib(container["resources"]["limits"]["memory"]) * 2**20
    assert not run.exited.oom_killed and 0 < run.exited.peak_memory_bytes < limit
    assert container["image"].rsplit(":", 1)[0].endswith(images.DRIFT_JOB)


def test_a_second_alert_within_the_cooldown_is_refused_and_registers_nothing(
    registered: tuple[retrain_job.RetrainRun, int], image: BuiltImage
) -> None:
    _, parent = registered
    before = {v.version for v in registry.list_versions()}
    again = retrain_job.run(parent, image, "77aa00bb11cc22dd", SCORE)
    assert again.exited.exit_code == EXIT_REFUSED, again.exited.log
    assert again.events[-1]["event"] == "refused" and again.events[-1]["breaker"] == "cooldown", again.events
    assert {v.version for v in registry.list_versions()} == before
