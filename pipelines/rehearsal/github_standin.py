"""A stand-in for GitHub's `repository_dispatch` API on loopback (GitHub is unreachable from here): it answers
204 as GitHub does (or the status a test sets) and records each call, so a test can check what the receiver sent."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from core import endpoints


@dataclass(frozen=True)
class Call:
    path: str
    authorization: str
    body: dict[str, Any]


class GitHubStandIn:
    def __init__(self, status: int = 204) -> None:
        self.calls: list[Call] = []
        self.status = status  # what GitHub answers: 204 accepted; a test sets 404 for a refusal
        calls, outer = self.calls, self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                calls.append(Call(self.path, self.headers.get("Authorization", ""), body))
                self.send_response(outer.status)
                self.end_headers()

            def log_message(self, *_args: Any) -> None:  # keep test output clean
                return

        self.server = ThreadingHTTPServer((endpoints.HOST, 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{endpoints.HOST}:{self.server.server_address[1]}"

    def __enter__(self) -> GitHubStandIn:
        self.thread.start()
        return self

    def __exit__(self, *_exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.server.shutdown()
        self.server.server_close()
