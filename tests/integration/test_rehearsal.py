"""The rehearsal of the model server: its image built from the repository, its rendered Deployment run with
`podman kube play` against the local MLflow and S3, ready within the rendered startupProbe budget, and answering
like the same version served locally."""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator

import pytest

from infra.containers.images import MODEL_SERVER, BuiltImage, build
from infra.containers.podman import podman
from infra.local import model_servers
from infra.local import serving as local
from pipelines.rehearsal.model_server import PodRun, classify, down, play

pytestmark = pytest.mark.integration

TEXTS = [
    "A moving, beautifully acted film.",
    "Dull, overlong and badly written; I left early.",
    "It was fine.",
    "The plot twists kept me guessing until the very last scene, and the score is wonderful.",
]


@pytest.fixture(scope="module")
def image() -> BuiltImage:
    return build(MODEL_SERVER)


@pytest.fixture(scope="module")
def pod(local_env: None, registered_versions: dict[str, int], image: BuiltImage) -> Iterator[PodRun]:
    run = play(registered_versions["fp32"], image)
    yield run
    down(run.kube_file)


def test_image_is_unprivileged_labelled_and_has_no_build_tools(image: BuiltImage) -> None:
    info = json.loads(podman("image", "inspect", image.ref))[0]
    assert info["Config"]["User"] == "10001:10001"
    assert re.fullmatch(r"[0-9a-f]{40}", info["Config"]["Labels"]["org.opencontainers.image.revision"])
    found = podman("run", "--rm", "--network", "none", image.ref, "sh", "-c",
                   "for t in gcc cc make pip; do command -v $t || true; done")  # fmt: skip
    assert found.strip() == "", f"build tools in the image: {found}"
    assert build(MODEL_SERVER).built is False, "an unchanged tree rebuilds nothing"


def test_pod_is_ready_within_the_startup_budget_and_probes_answer(pod: PodRun) -> None:
    assert pod.ready_seconds <= pod.budget_seconds
    for path in ("/readyz", "/livez"):
        assert status_of(f"{pod.url}{path}") == 200, path


def test_classify_answers_like_the_same_version_served_locally(
    pod: PodRun, registered_versions: dict[str, int]
) -> None:
    version = registered_versions["fp32"]
    was_live = version in model_servers.live_ports()
    server = local.start_model_server(version, wait=True)
    try:
        ours, theirs = classify(pod.url, TEXTS), classify(server.url, TEXTS)
    finally:
        if not was_live:
            local.stop_model_server(version)
    assert ours["model_version"] == theirs["model_version"] == version
    for mine, local_one in zip(ours["predictions"], theirs["predictions"], strict=True):
        assert mine["label"] == local_one["label"]
        assert mine["scores"].keys() == local_one["scores"].keys()
        for label, score in mine["scores"].items():
            assert abs(score - local_one["scores"][label]) <= 1e-6, (label, score, local_one["scores"][label])


def status_of(url: str) -> int:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return int(resp.status)
