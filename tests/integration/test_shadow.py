"""The shadow phase's mirror on the real gateway: stable's split traffic is mirrored to the candidate through the
relay, both servers log the same request ids, and a candidate that hangs (its processes stopped) or fails (killed)
costs the clients nothing: every request is answered by stable, as fast as with no shadow at all."""

from __future__ import annotations

import os
import re
import signal
import statistics
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import psutil
import pytest

from core import contracts, endpoints, env
from core import promql as q
from core.policy import policy
from infra.local import model_servers, s3, serving, tls
from infra.local.secrets import api_key
from infra.local.shadow_relay import relay_url
from infra.local.supervisor import ctl
from pipelines.drift.logs import Window, read_records
from pipelines.release.deps import LocalShadow

pytestmark = pytest.mark.integration
REQUESTS = 40


@pytest.fixture(scope="module")
def stable_and_candidate(local_env: None, registered_versions: dict[str, int]) -> Iterator[tuple[int, int]]:
    """fp32 taking all the traffic, int8's server live beside it with none (as in a release's shadow phase)."""
    stable, candidate = registered_versions["fp32"], registered_versions["int8"]
    serving.start_model_server(stable, wait=True)
    serving.set_weights({stable: 100})
    serving.start_model_server(candidate, wait=True)
    yield stable, candidate
    serving.stop_shadow()
    if candidate in model_servers.live_ports():
        serving.stop_model_server(candidate)


def timed_requests(n: int) -> tuple[list[float], set[str]]:
    """`n` requests one after the other on one keep-alive connection, as a client library sends them: seconds each,
    and the versions that answered."""
    headers = {contracts.API_KEY_HEADER: api_key("demo")}
    seconds, versions = [], set()
    with httpx.Client(base_url=endpoints.gateway_url(), headers=headers, verify=tls.client_context()) as client:
        for i in range(n):
            started = time.monotonic()
            resp = client.post(contracts.PREDICT_ROUTE, json={"texts": [f"A fine film, take {i}."]}, timeout=30)
            seconds.append(time.monotonic() - started)
            assert resp.status_code == 200, resp.text
            versions.add(resp.headers[contracts.VERSION_HEADER])
    return seconds, versions


def relay_outcomes() -> dict[str, float]:
    with urllib.request.urlopen(f"{relay_url()}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    return {
        m[0]: float(m[1])
        for m in re.findall(r'^mlp_shadow_requests_total\{[^}]*outcome="(\w+)"[^}]*\} (\S+)$', text, re.M)
    }


def wait_for(outcome: str, at_least: float, seconds: float = 20) -> dict[str, float]:
    deadline = time.monotonic() + seconds
    while (seen := relay_outcomes()).get(outcome, 0) < at_least:
        assert time.monotonic() < deadline, f"the relay counted {seen}, expected {outcome} >= {at_least}"
        time.sleep(0.5)
    return seen


def server_processes(version: int) -> list[psutil.Process]:
    pid = int(ctl("pid", model_servers.program_name(version)).strip())
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def test_mirrored_requests_reach_the_candidate_and_pair_by_request_id(stable_and_candidate: tuple[int, int]) -> None:
    stable, candidate = stable_and_candidate
    since = datetime.now(UTC) - timedelta(seconds=1)
    serving.start_shadow(candidate, 100)
    _, versions = timed_requests(REQUESTS)
    assert versions == {str(stable)}, "clients get stable's answers only"
    wait_for("answered", REQUESTS)
    time.sleep(policy().serving.inference_log_flush_seconds + 2)
    shadow = LocalShadow(policy().release.default_model)
    until = datetime.now(UTC)
    theirs = {a.request_id for a in shadow.answers(candidate, since, until)}
    ours = {a.request_id for a in shadow.answers(stable, since, until)}
    assert len(theirs) >= REQUESTS and theirs <= ours, "every mirrored request is one stable answered, same id"
    # Served on the candidate's pinned route, as Envoy's mirrored requests are (the Host mark): the canary analysis,
    # which reads the prediction route only, counts none of them; and logged as mirrored, so drift skips them.
    counted = prediction_requests(candidate)
    assert counted.get(contracts.PREDICT_ROUTE, 0) == 0 and counted[contracts.PINNED_PREDICT_ROUTE] >= REQUESTS, counted
    window = Window(since, until)
    bucket = env.INFERENCE_LOG_BUCKET.get() or contracts.INFERENCE_LOG_BUCKET
    assert read_records(s3.client(), bucket, policy().release.default_model, candidate, window) == []
    assert len(read_records(s3.client(), bucket, policy().release.default_model, stable, window)) >= REQUESTS


def prediction_requests(version: int) -> dict[str, float]:
    """The server's own request counter (BentoML's) by endpoint, summed over status codes."""
    port = model_servers.live_ports()[version]
    with urllib.request.urlopen(f"http://{endpoints.HOST}:{port}{contracts.METRICS_ROUTE}", timeout=5) as resp:
        text = resp.read().decode()
    counted: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(q.REQUEST_TOTAL + "{"):
            endpoint = re.search(r'endpoint="([^"]*)"', line)
            if endpoint:
                counted[endpoint.group(1)] = counted.get(endpoint.group(1), 0) + float(line.rsplit(" ", 1)[1])
    return counted


def test_a_hanging_then_failing_shadow_costs_clients_nothing(stable_and_candidate: tuple[int, int]) -> None:
    stable, candidate = stable_and_candidate
    serving.stop_shadow()
    baseline, _ = timed_requests(REQUESTS)
    serving.start_shadow(candidate, 100)
    before = relay_outcomes().get("timeout", 0)
    frozen = server_processes(candidate)
    for process in frozen:  # a hung candidate: it accepts connections, it never answers
        process.send_signal(signal.SIGSTOP)
    try:
        hanging, versions = timed_requests(REQUESTS)
        assert versions == {str(stable)}
        # The relay's request timeout passed on the first mirrored requests while the clients went on.
        wait_for("timeout", before + 1, seconds=policy().canary.shadow.request_timeout_seconds * 3 + 5)
    finally:
        for process in frozen:
            process.send_signal(signal.SIGCONT)
    for process in frozen:  # a failed candidate: nothing listens any more
        os.kill(process.pid, signal.SIGKILL)
    errors_before = relay_outcomes().get("error", 0)
    failing, versions = timed_requests(REQUESTS)
    assert versions == {str(stable)}
    wait_for("error", errors_before + 1)
    timeout = policy().canary.shadow.request_timeout_seconds
    print(
        f"\n[shadow] client p50 ms: no shadow {statistics.median(baseline) * 1000:.1f}, hanging shadow "
        f"{statistics.median(hanging) * 1000:.1f}, failing shadow {statistics.median(failing) * 1000:.1f}; slowest "
        f"{max(hanging + failing) * 1000:.0f} ms (the relay's timeout: {timeout * 1000:.0f} ms)"
    )
    # A mirror that waited on the candidate would add its timeout to every next request on the connection.
    assert max(hanging + failing) < timeout / 2
    for run in (hanging, failing):
        assert statistics.median(run) < 3 * statistics.median(baseline) + 0.02
