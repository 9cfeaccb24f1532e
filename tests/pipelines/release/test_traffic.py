"""The demo traffic driver counts what a client sees: 2xx by answering version, non-2xx, transport errors."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from pipelines.release.traffic import TrafficDriver


class _Gateway(BaseHTTPRequestHandler):
    calls = 0
    keys: ClassVar[set[str]] = set()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        _Gateway.calls += 1
        _Gateway.keys.add(self.headers.get("X-API-Key", ""))
        fail = _Gateway.calls % 4 == 0  # every 4th request answers 503
        body = json.dumps({"model_version": "3" if _Gateway.calls % 2 else "7", "predictions": []}).encode()
        self.send_response(503 if fail else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def gateway() -> Iterator[str]:
    _Gateway.calls, _Gateway.keys = 0, set()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Gateway)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/classify"
    server.shutdown()


def test_counts_statuses_and_versions(gateway: str) -> None:
    with TrafficDriver(gateway, "k-demo", [{"texts": ["a"]}, {"texts": ["b"]}], rps=100) as driver:
        time.sleep(0.5)
    stats = driver.stats
    assert stats.sent == _Gateway.calls > 10
    assert stats.ok + stats.non_2xx == stats.sent
    assert stats.non_2xx == _Gateway.calls // 4
    assert stats.by_status[503] == stats.non_2xx
    assert set(stats.by_version) <= {"3", "7"} and sum(stats.by_version.values()) == stats.ok
    assert _Gateway.keys == {"k-demo"}


def test_no_answer_is_a_client_visible_error() -> None:
    with TrafficDriver("http://127.0.0.1:9/classify", "k", [{"texts": ["a"]}], rps=50, timeout=1) as driver:
        time.sleep(0.3)
    assert driver.stats.transport_errors == driver.stats.sent > 0
    assert driver.stats.client_errors == driver.stats.sent


def test_rejects_a_zero_rate() -> None:
    with pytest.raises(ValueError, match="rate"):
        TrafficDriver("http://127.0.0.1:9", "k", [{"texts": ["a"]}], rps=0)
