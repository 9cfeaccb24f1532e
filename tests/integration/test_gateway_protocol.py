"""Requests broken at the protocol level, sent over TLS to the real gateway: each gets a 4xx whose JSON body says what
was wrong, never a 5xx, and a client that stalls is dropped after `gateway.client_timeout_seconds`, never waited on.
The gateway keeps serving well-formed requests after each of them."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from core import contracts, endpoints
from core.policy import policy
from infra.local import serving, tls
from infra.local.secrets import api_key

pytestmark = pytest.mark.integration

GOOD = json.dumps({"texts": ["A moving, beautifully acted film."]}).encode()


@pytest.fixture(scope="module")
def live(registered_versions: dict[str, int]) -> Iterator[int]:
    version = registered_versions["fp32"]  # the version test_gateway_tls serves: one server for both modules
    started = version not in {s.version for s in serving.live_model_servers()}
    serving.start_model_server(version, wait=True)
    if not serving.current_weights():
        serving.set_weights({version: 100})
    yield version
    if started and serving.current_weights().get(version, 0) == 0:
        serving.stop_model_server(version)


def exchange(request: bytes, wait: float = 15.0) -> tuple[bytes, float]:
    """Send raw bytes over a verified TLS connection; return what came back before the server closed (or `wait`
    passed) and the seconds that took."""
    started = time.monotonic()
    port = policy().ports.gateway
    with (
        socket.create_connection((endpoints.HOST, port), timeout=wait) as raw,
        tls.client_context().wrap_socket(raw, server_hostname=endpoints.HOST) as conn,
    ):
        conn.sendall(request)
        data = b""
        while True:
            try:
                chunk = conn.recv(65536)
            except (TimeoutError, ConnectionResetError):
                break
            if not chunk:
                break
            data += chunk
    return data, time.monotonic() - started


def status_and_body(answer: bytes) -> tuple[int, dict[str, object]]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body)


def request(*headers: str, body: bytes = GOOD, line: str = f"POST {contracts.PREDICT_ROUTE} HTTP/1.1") -> bytes:
    lines = [line, f"Host: {endpoints.HOST}", f"{contracts.API_KEY_HEADER}: {api_key('demo')}", *headers]
    if not any(h.lower().startswith("content-length") for h in headers):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join([*lines, "Connection: close", "", ""])).encode() + body


def still_serving() -> None:
    with httpx.Client(base_url=endpoints.gateway_url(), verify=tls.client_context(), timeout=30) as client:
        resp = client.post(contracts.PREDICT_ROUTE, content=GOOD, headers={
            contracts.API_KEY_HEADER: api_key("demo"), "Content-Type": "application/json"})  # fmt: skip
    assert resp.status_code == 200, resp.text


@pytest.mark.parametrize(
    ("case", "raw", "status", "reason"),
    [
        ("malformed request line", b"THIS IS NOT HTTP\r\n\r\n", 400, "malformed HTTP request"),
        ("oversized header", request("X-Filler: " + "a" * 20000), 431, "request headers too large"),
        ("URI too long", request(line=f"POST {contracts.PREDICT_ROUTE}?{'q' * 20000} HTTP/1.1"), 414, "URI too long"),
        ("duplicated Content-Length", request("Content-Length: 5", "Content-Length: 7"), 400, "malformed"),
        ("duplicated Host", request(f"Host: {endpoints.HOST}"), 400, "malformed"),
        ("body not JSON", request(body=b"texts=a"), 400, "Invalid JSON"),
    ],
    ids=lambda v: v if isinstance(v, str) and " " in v else "",
)
def test_a_broken_request_gets_a_4xx_naming_the_problem(live: int, case: str, raw: bytes, status: int, reason: str):
    answer, _ = exchange(raw)
    got, body = status_and_body(answer)
    assert got == status, f"{case}: {answer[:300]!r}"
    assert reason in json.dumps(body), f"{case}: {body}"
    still_serving()


@pytest.mark.parametrize(
    "stall",
    [
        request(body=b'{"texts": ')[:-10],  # headers end, the body announced is never completed
        f"POST {contracts.PREDICT_ROUTE} HTTP/1.1\r\nHost: {endpoints.HOST}\r\n".encode(),  # headers never end
    ],
    ids=["body", "headers"],
)
def test_a_client_that_stalls_is_dropped_after_the_policy_timeout(live: int, stall: bytes) -> None:
    limit = policy().gateway.client_timeout_seconds
    answer, took = exchange(stall, wait=limit * 3)
    assert took < limit * 3, "the gateway held a stalled connection open"
    assert took >= limit * 0.8, f"dropped after {took:.1f}s, before the {limit}s the policy gives a client"
    assert not answer.startswith(b"HTTP/1.1 5"), answer[:200]
    still_serving()
