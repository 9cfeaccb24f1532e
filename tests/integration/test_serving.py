"""Serving end to end on the real local servers: two live versions behind the nginx gateway.

Split within a binomial bound, pins, labelled metrics per version, graceful weight changes under load, retry on
stable when a server dies, a bad-input matrix (right 4xx, clear JSON message, never 5xx), rate limit, and the
inference log in S3.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import psutil
import pytest

from core import contracts, endpoints
from core import promql as q
from core.policy import policy
from infra.local import serving as gateway
from infra.local import serving as ms
from infra.local import tls
from infra.local.secrets import api_key
from infra.local.supervisor import ctl
from pipelines.gateway_client import RetryClosedKeepAlive

pytestmark = pytest.mark.integration

PIN = contracts.PIN_HEADER
TEXT = {"texts": ["A moving, beautifully acted film."]}


@pytest.fixture(scope="module")
def versions(registered_versions: dict[str, int]) -> Iterator[tuple[int, int]]:
    """fp32 (stable) and int8 live; restores the weights and stops what it started."""
    stable, canary = registered_versions["fp32"], registered_versions["int8"]
    before = {s.version for s in ms.live_model_servers()}
    weights_before = gateway.current_weights()
    for v in (stable, canary):
        ms.start_model_server(v, wait=True)
    gateway.set_weights({stable: 80, canary: 20})
    yield stable, canary
    live = {s.version for s in ms.live_model_servers()}
    restore = weights_before if weights_before and set(weights_before) <= live else {stable: 100}
    gateway.set_weights(restore)
    for v in (stable, canary):
        if v not in before and restore.get(v, 0) == 0:
            ms.stop_model_server(v)


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    key = {"X-API-Key": api_key("demo")}
    with httpx.Client(base_url=endpoints.gateway_url(), headers=key, timeout=30, verify=tls.client_context()) as c:
        yield c


@pytest.fixture(scope="module")
def internal() -> Iterator[httpx.Client]:
    """A client with the key that may pin a version (policy gateway.api_keys[].internal)."""
    key = api_key(policy().gateway.internal_key())
    verify = tls.client_context()
    with httpx.Client(base_url=endpoints.gateway_url(), headers={"X-API-Key": key}, timeout=30, verify=verify) as c:
        yield c


def classify(client: httpx.Client, **kw: object) -> httpx.Response:
    return client.post("/classify", json=kw.pop("json", TEXT), **kw)  # type: ignore[arg-type]


def test_split_follows_the_weights(versions: tuple[int, int], client: httpx.Client) -> None:
    stable, canary = versions
    n, p = 300, 0.2
    answered = Counter()
    for _ in range(n):
        resp = classify(client)
        assert resp.status_code == 200, resp.text
        assert resp.json()["model_version"] == int(resp.headers["X-Model-Version"])
        answered[int(resp.headers["X-Model-Version"])] += 1
    assert set(answered) <= {stable, canary}
    # split_clients hashes a random request id: the canary count is Binomial(300, 0.2); 4.5 sigma either way.
    sigma = math.sqrt(n * p * (1 - p))
    assert abs(answered[canary] - n * p) <= 4.5 * sigma, answered


def test_pin_header_routes_to_that_version(versions: tuple[int, int], internal: httpx.Client) -> None:
    for version in versions:
        for _ in range(5):
            resp = classify(internal, headers={PIN: str(version)})
            assert resp.status_code == 200 and resp.headers["X-Model-Version"] == str(version)
    resp = classify(internal, headers={PIN: "999"})
    assert resp.status_code == 404
    assert "names no live model version" in resp.json()["error"]


def test_the_catalogue_route_answers_as_classify_does(versions: tuple[int, int], internal: httpx.Client) -> None:
    """`/v1/models/<default model>/classify` is the same route as `/classify`: same pins, same answer, same checks."""
    route = contracts.model_route(policy().release.default_model, "classify")
    for version in versions:
        old = classify(internal, headers={PIN: str(version)})
        new = internal.post(route, json=TEXT, headers={PIN: str(version)})
        assert new.status_code == 200 and new.headers["X-Model-Version"] == str(version)
        assert new.json()["predictions"] == old.json()["predictions"]
    assert internal.get(route).status_code == 405
    assert internal.post(route.replace("classify", "generate"), json=TEXT).status_code == 404  # not served here


def test_a_pin_from_a_key_that_may_not_pin_follows_the_weights(versions: tuple[int, int], client: httpx.Client) -> None:
    """The demo key is not internal: its pin header is ignored (80/20 split; 30 answers all from the canary would
    have probability 0.2**30)."""
    stable, canary = versions
    answered = {classify(client, headers={PIN: str(canary)}).headers["X-Model-Version"] for _ in range(30)}
    assert str(stable) in answered


def _requests(server_url: str, endpoint: str) -> float:
    text = httpx.get(f"{server_url}/metrics", timeout=10).text
    prefix = "bentoml_service_request_total{"
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(prefix) and f'endpoint="{endpoint}"' in line
    )


def test_pinned_requests_are_counted_apart_from_what_the_canary_analysis_reads(
    versions: tuple[int, int], internal: httpx.Client
) -> None:
    """The analysis and the SLO rules select `endpoint="/classify"`; pinned requests arrive on the pinned route."""
    assert q.PREDICT_ENDPOINT == contracts.PREDICT_ROUTE != contracts.PINNED_PREDICT_ROUTE
    _, canary = versions
    server = next(s for s in ms.live_model_servers() if s.version == canary)
    before = {e: _requests(server.url, e) for e in (contracts.PREDICT_ROUTE, contracts.PINNED_PREDICT_ROUTE)}
    for _ in range(5):
        assert classify(internal, headers={PIN: str(canary)}).status_code == 200
    after = {e: _requests(server.url, e) for e in before}
    assert after[contracts.PINNED_PREDICT_ROUTE] - before[contracts.PINNED_PREDICT_ROUTE] == 5
    assert after[contracts.PREDICT_ROUTE] == before[contracts.PREDICT_ROUTE]


def test_each_server_exports_its_labelled_metrics(versions: tuple[int, int], internal: httpx.Client) -> None:
    name = policy().release.default_model
    for version in versions:
        classify(internal, headers={PIN: str(version)})
        server = next(s for s in ms.live_model_servers() if s.version == version)
        text = httpx.get(f"{server.url}/metrics", timeout=10).text
        labels = f'model_name="{name}",model_version="{version}"'
        for metric in ("mlp_model_inferences_total", "mlp_model_request_batch_size_count",
                       "mlp_model_prediction_confidence_count", "mlp_model_loaded",
                       "mlp_model_server_start_time_seconds"):  # fmt: skip
            lines = [ln for ln in text.splitlines() if ln.startswith(metric + "{") and labels in ln]
            assert lines and float(lines[0].rsplit(" ", 1)[1]) > 0, f"{metric} for v{version}"
        assert 'bentoml_service_request_total{endpoint="/classify/pinned"' in text
        assert "bentoml_service_request_in_progress" in text


def test_weights_change_under_load_without_errors(versions: tuple[int, int], client: httpx.Client) -> None:
    stable, canary = versions
    statuses: Counter[object] = Counter()
    stop = threading.Event()
    transports: list[RetryClosedKeepAlive] = []

    def load() -> None:
        # The platform's own gateway client: a request on a keep-alive connection that the reload closed before
        # answering is sent again on a new one (pipelines/gateway_client.py); anything else counts as an error.
        transport = RetryClosedKeepAlive(httpx.HTTPTransport(verify=tls.client_context()))
        transports.append(transport)
        key = {"X-API-Key": api_key("loadtest")}
        with httpx.Client(base_url=endpoints.gateway_url(), headers=key, transport=transport) as c:
            while not stop.is_set():
                try:
                    statuses[c.post("/classify", json=TEXT, timeout=30).status_code] += 1
                except httpx.HTTPError as exc:
                    statuses[type(exc).__name__] += 1

    workers = [threading.Thread(target=load) for _ in range(4)]
    for w in workers:
        w.start()
    try:
        reloads = ({stable: 50, canary: 50}, {stable: 100}, {stable: 10, canary: 90}, {stable: 80, canary: 20})
        for weights in reloads:
            time.sleep(0.5)
            gateway.set_weights(weights)
            assert gateway.current_weights() == {v: w for v, w in weights.items() if w}
        time.sleep(0.5)
    finally:
        stop.set()
        for w in workers:
            w.join(30)
    assert statuses[200] > 20
    assert set(statuses) == {200}, statuses
    # At most one closed idle connection per client per reload: more would mean nginx drops requests.
    assert sum(t.retries for t in transports) <= len(workers) * len(reloads)


def test_stop_refuses_a_version_that_has_traffic(versions: tuple[int, int]) -> None:
    _, canary = versions
    with pytest.raises(ms.ModelServerError, match="receives 20% of the traffic"):
        ms.stop_model_server(canary)


@pytest.mark.parametrize(
    ("body", "headers", "status", "message"),
    [
        (b'{"texts": ["ok"', {}, 400, "Invalid JSON"),
        (b'{"texts": "one text"}', {}, 400, "valid array"),
        (b'{"texts": [1, 2]}', {}, 400, "valid string"),
        (b'{"texts": []}', {}, 400, "texts is empty"),
        (json.dumps({"texts": ["x"] * 33}).encode(), {}, 400, "at most 32"),
        (json.dumps({"texts": ["x" * 2001]}).encode(), {}, 400, "at most 2000"),
        (json.dumps({"texts": ["x" * 70000]}).encode(), {}, 413, "too large"),
        (b'{"texts": ["\xff\xfe bad bytes"]}', {}, 400, "Invalid JSON"),
        (b'{"texts": ["  "]}', {}, 400, "empty or whitespace"),
        (b"", {}, 400, "Field required"),
        (json.dumps(TEXT).encode(), {"X-API-Key": ""}, 401, "missing API key"),
        (json.dumps(TEXT).encode(), {"X-API-Key": "not-a-key"}, 403, "unknown API key"),
    ],
)
def test_bad_input_is_a_clear_4xx(
    versions: tuple[int, int], client: httpx.Client, body: bytes, headers: dict[str, str], status: int, message: str
) -> None:
    resp = client.post("/classify", content=body, headers={"Content-Type": "application/json", **headers})
    assert resp.status_code == status, resp.text
    assert message in resp.text
    assert isinstance(resp.json(), dict)
    assert classify(client).status_code == 200  # and the server keeps serving


def test_rate_limit_answers_429_with_retry_after(versions: tuple[int, int]) -> None:
    statuses = []
    key, verify = {"X-API-Key": api_key("limited")}, tls.client_context()
    with httpx.Client(base_url=endpoints.gateway_url(), headers=key, verify=verify) as c:
        for _ in range(12):
            resp = c.post("/classify", json=TEXT, timeout=30)
            statuses.append(resp.status_code)
            if resp.status_code == 429:
                assert int(resp.headers["Retry-After"]) >= 1
                assert "rate limit" in resp.json()["error"]
    assert 200 in statuses and 429 in statuses
    assert all(s in (200, 429) for s in statuses), statuses


def test_inference_log_lands_in_s3_with_the_key_layout(versions: tuple[int, int], internal: httpx.Client) -> None:
    from infra.local.s3 import client as s3_client

    stable, _ = versions
    marker = f"inference-log probe {time.time_ns()}"
    assert classify(internal, json={"texts": [marker]}, headers={PIN: str(stable)}).status_code == 200
    name = policy().release.default_model
    prefix = f"model={name}/version={stable}/date={datetime.now(UTC):%Y-%m-%d}/"
    s3 = s3_client()
    deadline = time.monotonic() + policy().serving.inference_log_flush_seconds + 30
    found = None
    while found is None and time.monotonic() < deadline:
        for obj in s3.list_objects_v2(Bucket=contracts.INFERENCE_LOG_BUCKET, Prefix=prefix).get("Contents", []):
            body = gzip.decompress(s3.get_object(Bucket=contracts.INFERENCE_LOG_BUCKET, Key=obj["Key"])["Body"].read())
            rows = [json.loads(line) for line in body.decode().splitlines()]
            found = next(((obj["Key"], r) for r in rows if r["text"] == marker), None)
            if found:
                break
        time.sleep(1)
    assert found, f"no inference-log record under {prefix}"
    key, row = found
    assert key.endswith(".jsonl.gz") and key.split("/")[3][2] == "-"
    assert row["model_version"] == stable and row["model_name"] == name
    assert row["n_tokens"] > 2 and row["label"] in row["scores"] and len(row["request_id"]) >= 16


def test_a_dead_server_is_covered_by_stable(versions: tuple[int, int], client: httpx.Client) -> None:
    stable, canary = versions
    assert gateway.stable_version() == stable
    pid = int(ctl("pid", ms.program_name(canary)).strip())
    victims = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    for proc in victims:  # the server and its worker, hard: no graceful shutdown
        os.kill(proc.pid, signal.SIGKILL)
    psutil.wait_procs(victims, timeout=10)
    answered = Counter()
    for _ in range(40):
        resp = classify(client)
        assert resp.status_code == 200, resp.text
        answered[resp.headers["X-Model-Version"]] += 1
    assert answered[str(stable)] == 40  # the canary's share was retried on stable
    # supervisord restarts the killed server; it becomes ready again without anyone touching the gateway.
    deadline = time.monotonic() + 180
    while not ms.is_ready(canary) and time.monotonic() < deadline:
        time.sleep(1)
    assert ms.is_ready(canary)
