"""The rehearsal of the model server: its image built from the repository, its rendered Deployment run with
`podman kube play` against the local MLflow and S3, ready within the rendered startupProbe budget, writing its
inference log where the rendered env says, and answering like the same version served locally."""

from __future__ import annotations

import gzip
import json
import os
import re
import signal
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
import yaml

from core import env
from core.policy import policy
from infra.containers.images import MODEL_SERVER, BuiltImage, build
from infra.containers.podman import podman
from infra.local import model_servers
from infra.local import serving as local
from modules.k8s.serving import quantity_mib
from pipelines.rehearsal.load import open_loop
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


def test_inference_log_lands_in_the_bucket_the_rendered_env_names(
    pod: PodRun, registered_versions: dict[str, int]
) -> None:
    from infra.local.s3 import client as s3_client

    container = yaml.safe_load(pod.kube_file.read_text())["spec"]["template"]["spec"]["containers"][0]
    bucket = {e["name"]: e["value"] for e in container["env"]}[env.INFERENCE_LOG_BUCKET.name]
    version = registered_versions["fp32"]
    marker = f"rehearsal inference-log probe {time.time_ns()}"
    classify(pod.url, [marker])
    prefix = f"model={policy().release.model_name}/version={version}/date={datetime.now(UTC):%Y-%m-%d}/"
    s3 = s3_client()
    deadline = time.monotonic() + policy().serving.inference_log_flush_seconds + 30
    while time.monotonic() < deadline:
        for obj in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []):
            body = gzip.decompress(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())
            if any(json.loads(line)["text"] == marker for line in body.decode().splitlines()):
                return
        time.sleep(1)
    pytest.fail(f"no inference-log record of the pod under s3://{bucket}/{prefix}")


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


def test_stays_within_the_rendered_memory_limit_at_100_requests_a_second(pod: PodRun) -> None:
    limit = yaml.safe_load(pod.kube_file.read_text())["spec"]["template"]["spec"]["containers"][0]["resources"]
    limit_bytes = quantity_mib(limit["limits"]["memory"]) * 2**20
    restarts = podman("inspect", "--format", "{{.RestartCount}}", pod.container_id).strip()
    result = open_loop(pod.url, pod.container_id, rate=100, seconds=30, text=TEXTS[0])
    assert not result.errors, result.errors[:5]
    assert result.seconds < 33, f"the client could not keep 100 req/s: {result.seconds:.1f}s"
    state = podman("inspect", "--format", "{{.RestartCount}} {{.State.OOMKilled}}", pod.container_id).split()
    assert state == [restarts, "false"], f"restarted or OOM-killed under load: {state}"
    assert 0 < result.peak_memory_bytes < limit_bytes


def test_a_killed_server_is_restarted_and_ready_again(pod: PodRun) -> None:
    """The server process dies (SIGKILL from outside, as a crash; `podman kill` would count as a stop by the user):
    the rendered restart policy brings it back. The probes themselves run in the kubelet, not here."""
    restarts = int(podman("inspect", "--format", "{{.RestartCount}}", pod.container_id))
    os.kill(int(podman("inspect", "--format", "{{.State.Pid}}", pod.container_id)), signal.SIGKILL)
    deadline = time.monotonic() + pod.budget_seconds
    while time.monotonic() < deadline:
        count = int(podman("inspect", "--format", "{{.RestartCount}}", pod.container_id))
        if count > restarts and _status(f"{pod.url}/readyz") == 200:
            return
        time.sleep(0.5)
    pytest.fail("the killed server was not restarted and ready within the startup budget")


def _status(url: str) -> int:
    try:
        return status_of(url)
    except OSError:
        return 0


def test_sigterm_drains_in_flight_requests_within_the_grace_period(pod: PodRun) -> None:
    """Requests in flight when the server gets SIGTERM all complete; it exits within terminationGracePeriodSeconds."""
    rendered = yaml.safe_load(pod.kube_file.read_text())["spec"]["template"]["spec"]
    grace = rendered["terminationGracePeriodSeconds"]
    texts = [TEXTS[3] * 8] * policy().serving.max_batch_size  # slow enough to be in flight
    with ThreadPoolExecutor(max_workers=8) as pool:
        pid = int(podman("inspect", "--format", "{{.State.Pid}}", pod.container_id))
        restarts = int(podman("inspect", "--format", "{{.RestartCount}}", pod.container_id))
        futures = [pool.submit(classify, pod.url, texts) for _ in range(8)]
        time.sleep(0.3)
        assert not all(f.done() for f in futures), "no request was in flight at SIGTERM"
        sent = time.monotonic()
        os.kill(pid, signal.SIGTERM)
        answers = [f.result(timeout=grace) for f in futures]  # raises on any client error
    assert all(len(a["predictions"]) == len(texts) for a in answers)
    while int(podman("inspect", "--format", "{{.RestartCount}}", pod.container_id)) == restarts:
        assert time.monotonic() - sent <= grace, f"still running {grace}s after SIGTERM"
        time.sleep(0.2)
