"""The rehearsal of the model server and the drift job: images built from the repository, the rendered Deployment
run with `podman kube play` against the local MLflow and S3, ready within the rendered startupProbe budget, writing
its inference log where the rendered env says, answering like the same version served locally; then the drift
CronJob's pod reading that log, pushing its score to the Pushgateway and raising the alert."""

from __future__ import annotations

import gzip
import json
import os
import random
import signal
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import yaml

from core import contracts, endpoints, env
from core import promql as q
from core.policy import policy
from infra.containers.images import DRIFT_JOB, MODEL_SERVER, BuiltImage, build
from infra.containers.podman import podman
from infra.local import gateway, model_servers, tls
from infra.local import serving as local
from infra.local.secrets import api_key
from modules.k8s.serving import quantity_mib
from pipelines.data import load_shifted
from pipelines.drift.check import EXIT_DRIFT
from pipelines.drift.logs import Window, read_records
from pipelines.drift.push import forget, pushed
from pipelines.rehearsal import drift_job
from pipelines.rehearsal.load import open_loop
from pipelines.rehearsal.model_server import PodRun, classify, play
from pipelines.rehearsal.pods import down, liveness_failure_seconds

pytestmark = pytest.mark.integration
SHIFTED_SAMPLES = 150  # over the policy's drift.min_samples

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


def test_pod_is_ready_within_the_startup_budget_and_probes_answer(pod: PodRun) -> None:
    assert pod.ready_seconds <= pod.budget_seconds
    for path in ("/readyz", "/livez"):
        assert status_of(f"{pod.url}{path}") == 200, path


def test_inference_log_lands_in_the_bucket_the_rendered_env_names(
    pod: PodRun, registered_versions: dict[str, int]
) -> None:
    from infra.local.s3 import client as s3_client

    container = yaml.safe_load(pod.kube_file.read_text())["spec"]["template"]["spec"]["containers"][0]
    bucket = {e["name"]: e.get("value") for e in container["env"]}[env.INFERENCE_LOG_BUCKET.name]
    version = registered_versions["fp32"]
    marker = f"rehearsal inference-log probe {time.time_ns()}"
    classify(pod.url, [marker])
    prefix = f"model={policy().release.default_model}/version={version}/date={datetime.now(UTC):%Y-%m-%d}/"
    s3 = s3_client()
    deadline = time.monotonic() + policy().serving.inference_log_flush_seconds + 30
    while time.monotonic() < deadline:
        for obj in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []):
            body = gzip.decompress(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())
            if any(json.loads(line)["text"] == marker for line in body.decode().splitlines()):
                return
        time.sleep(1)
    pytest.fail(f"no inference-log record of the pod under s3://{bucket}/{prefix}")


def test_classify_through_the_local_gateway_pointed_at_the_pod_answers_like_the_local_server(
    pod: PodRun, registered_versions: dict[str, int]
) -> None:
    """The local gateway routes the version's pin to the pod (as the cluster's HTTPRoute routes to its Service): the
    answers, auth and routing included, are the local server's (same labels, scores within 1e-6)."""
    version = registered_versions["fp32"]
    was_live = version in model_servers.live_ports()
    server = local.start_model_server(version, wait=True)
    pod_port = int(pod.url.rsplit(":", 1)[1])
    gateway.refresh({**model_servers.live_ports(), version: pod_port})
    try:
        headers = {
            contracts.API_KEY_HEADER: api_key(policy().gateway.internal_key()),  # it pins
            contracts.PIN_HEADER: str(version),
        }
        url, verify = f"{endpoints.gateway_url()}/classify", tls.client_context()
        response = httpx.post(url, json={"texts": TEXTS}, headers=headers, timeout=30, verify=verify)
        theirs = classify(server.url, TEXTS)
    finally:
        if not was_live:
            local.stop_model_server(version)
        local.refresh_gateway()
    assert response.status_code == 200, response.text
    ours = response.json()
    assert ours["model_version"] == theirs["model_version"] == version
    for mine, local_one in zip(ours["predictions"], theirs["predictions"], strict=True):
        assert mine["label"] == local_one["label"]
        assert mine["scores"].keys() == local_one["scores"].keys()
        for label, score in mine["scores"].items():
            assert abs(score - local_one["scores"][label]) <= 1e-6, (label, score, local_one["scores"][label])


def test_drift_job_reads_the_pods_log_pushes_its_score_and_the_alert_fires(
    pod: PodRun, registered_versions: dict[str, int], image: BuiltImage
) -> None:
    """Shifted traffic (news headlines) to the pod; the drift CronJob's pod, run as rendered, reads what the server
    logged, finds drift, pushes its share to the Pushgateway, and the rule raises the alert."""
    from infra.local.prometheus import query
    from infra.local.s3 import client as s3_client

    version, model = registered_versions["fp32"], policy().release.default_model
    job_image = build(DRIFT_JOB)
    since = datetime.now(UTC) - timedelta(seconds=2)
    shifted = random.Random(11).sample(load_shifted(), SHIFTED_SAMPLES)
    for i in range(0, len(shifted), 25):
        classify(pod.url, shifted[i : i + 25])
    deadline = time.monotonic() + policy().serving.inference_log_flush_seconds + 30
    window = Window(since, datetime.now(UTC) + timedelta(seconds=60))
    while len(read_records(s3_client(), contracts.INFERENCE_LOG_BUCKET, model, version, window)) < SHIFTED_SAMPLES:
        assert time.monotonic() < deadline, "the pod's inference log did not reach the bucket"
        time.sleep(1)
    run = drift_job.run(version, since, image, job_image)
    try:
        ran = run.exited
        assert ran.exit_code == EXIT_DRIFT, f"exit {ran.exit_code}, expected {EXIT_DRIFT} (drift):\n{ran.log}"
        container = run.rendered["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
        limit = quantity_mib(container["resources"]["limits"]["memory"]) * 2**20
        assert not ran.oom_killed and 0 < ran.peak_memory_bytes < limit, (ran.peak_memory_bytes, limit)
        share = pushed(endpoints.pushgateway_url(), model, version)[q.DRIFT_SCORE]
        assert share > policy().drift.threshold, share
        expr = f'ALERTS{{alertname="{contracts.ALERT_DRIFT}",alertstate="firing",model_version="{version}"}}'
        alert_deadline = time.monotonic() + 90
        while not query(expr):
            assert time.monotonic() < alert_deadline, f"{contracts.ALERT_DRIFT} did not fire for v{version} in 90 s"
            time.sleep(3)
    finally:
        down(run.kube_file)
        forget(endpoints.pushgateway_url(), model, version)  # the version serves on: no alert left behind


def status_of(url: str) -> int:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return int(resp.status)


def test_stays_within_the_rendered_memory_limit_at_100_requests_a_second(pod: PodRun) -> None:
    limit = yaml.safe_load(pod.kube_file.read_text())["spec"]["template"]["spec"]["containers"][0]["resources"]
    limit_bytes = quantity_mib(limit["limits"]["memory"]) * 2**20
    restarts = podman("inspect", "--format", "{{.RestartCount}}", pod.container_id).strip()
    result = open_loop(pod.url, pod.container_id, rate=100, seconds=30, text=TEXTS[0])
    print(f"\n[load] {result.sent} sent, keep-alive races retried: {result.keep_alive_retries}")
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


def test_a_hung_server_fails_its_liveness_probe_and_the_restart_recovers_it(pod: PodRun) -> None:
    """The container frozen whole (`podman pause`: a deadlocked server whose process still exists). The rendered
    liveness probe, run as the kubelet runs it, fails `failureThreshold` times in a row within period x threshold
    (+ one timeout); the restart the kubelet then makes (`podman restart`) brings it back ready."""
    container = yaml.safe_load(pod.kube_file.read_text())["spec"]["template"]["spec"]["containers"][0]
    probe = container["livenessProbe"]
    url = f"{pod.url}{probe['httpGet']['path']}"
    budget = probe["periodSeconds"] * probe["failureThreshold"] + probe["timeoutSeconds"]
    podman("pause", pod.container_id)
    try:
        seconds = liveness_failure_seconds(url, probe, limit_seconds=3 * budget)
    finally:
        podman("unpause", pod.container_id)
    assert seconds <= budget, f"the liveness probe took {seconds:.0f}s to fail (rendered budget {budget}s)"
    # The kubelet kills the container and restarts it by the pod's restartPolicy, the pod staying up. `podman
    # restart` would stop the pod's last container, which stops the pod (kube play's exit policy).
    restarts = int(podman("inspect", "--format", "{{.RestartCount}}", pod.container_id))
    os.kill(int(podman("inspect", "--format", "{{.State.Pid}}", pod.container_id)), signal.SIGKILL)
    deadline = time.monotonic() + pod.budget_seconds
    while int(podman("inspect", "--format", "{{.RestartCount}}", pod.container_id)) == restarts:
        assert time.monotonic() < deadline, "the killed container was not restarted by the pod's restartPolicy"
        time.sleep(0.2)
    while _status(f"{pod.url}/readyz") != 200:
        assert time.monotonic() < deadline, "not ready again within the startup budget after the restart"
        time.sleep(0.5)


def _status(url: str) -> int:
    try:
        return status_of(url)
    except OSError:
        return 0


def test_sigterm_drains_in_flight_requests_within_the_grace_period(pod: PodRun) -> None:
    """Requests in flight when the server gets SIGTERM all complete; it exits within terminationGracePeriodSeconds."""
    rendered = yaml.safe_load(pod.kube_file.read_text())["spec"]["template"]["spec"]
    grace = rendered["terminationGracePeriodSeconds"]
    # Slow enough to be in flight at SIGTERM, light enough that all of them finish inside the server's request timeout
    # (`gateway.upstream_timeout_seconds`) on two busy cores.
    texts = [TEXTS[3] * 8] * 12
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
