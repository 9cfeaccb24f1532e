"""The gateway client's retry: only a kept-alive connection closed before any response is retried, once."""

from __future__ import annotations

import select
import socket
import threading
from collections.abc import Iterator

import httpx
import pytest

from pipelines.gateway_client import RetryClosedKeepAlive, closed_by_reload

OK = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"ok":true}'


def _read_request(conn: socket.socket) -> bool:
    """Read one whole request (headers and Content-Length body); False at end of stream."""
    data = b""
    while b"\r\n\r\n" not in data:
        if not (chunk := conn.recv(65536)):
            return False
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(h.split(b":")[1]) for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")), 0)
    while len(body) < length:
        body += conn.recv(65536)
    return True


@pytest.fixture(params=["fin", "reset"])
def closes_second_request_on_first_connection(request: pytest.FixtureRequest) -> Iterator[tuple[str, list[int]]]:
    """A real HTTP/1.1 server that does to one keep-alive connection what a reloading nginx worker does to an idle
    one: the first connection answers one request, then is closed as the next request arrives, without an answer.
    "fin": the request was read (the client sees the connection end); "reset": it was not (closing a socket with
    unread data makes the kernel send a reset). Every later connection answers every request.
    Yields (url, requests answered per connection)."""
    listener = socket.create_server(("127.0.0.1", 0))
    answered: list[int] = []

    def serve(conn: socket.socket, index: int) -> None:
        answered.append(0)
        with conn:
            while True:
                if index == 0 and answered[index] == 1:
                    select.select([conn], [], [], 5)  # the next request is arriving
                    if request.param == "fin":
                        _read_request(conn)
                    return
                if not _read_request(conn):
                    return
                answered[index] += 1  # counted before it is sent: the client may assert as soon as it reads it
                conn.sendall(OK)

    def accept() -> None:
        index = 0
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn, index), daemon=True).start()
            index += 1

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}", answered
    listener.close()


def test_a_request_on_a_connection_closed_before_answering_is_sent_again(
    closes_second_request_on_first_connection: tuple[str, list[int]],
) -> None:
    url, answered = closes_second_request_on_first_connection
    transport = RetryClosedKeepAlive()
    with httpx.Client(transport=transport, timeout=5) as client:
        statuses = [client.post(url, json={"texts": [str(i)]}).status_code for i in range(3)]
    assert statuses == [200, 200, 200]
    assert transport.retries == 1
    assert answered == [1, 2]  # the second request was answered on a new connection


def test_without_the_retry_the_same_close_is_an_error(
    closes_second_request_on_first_connection: tuple[str, list[int]],
) -> None:
    url, _ = closes_second_request_on_first_connection
    with httpx.Client(timeout=5) as client:
        assert client.post(url, json={}).status_code == 200
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)) as failure:
            client.post(url, json={})
    assert closed_by_reload(failure.value), failure.value


class Scripted(httpx.BaseTransport):
    def __init__(self, *outcomes: Exception | int) -> None:
        self.outcomes = list(outcomes)
        self.calls = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return httpx.Response(outcome, request=request)


CLOSED = httpx.RemoteProtocolError("Server disconnected without sending a response.")


def test_retries_once_only() -> None:
    inner = Scripted(CLOSED, CLOSED, 200)
    with httpx.Client(transport=RetryClosedKeepAlive(inner)) as client, pytest.raises(httpx.RemoteProtocolError):
        client.post("http://gateway/classify", json={})
    assert inner.calls == 2


@pytest.mark.parametrize(
    "error",
    [
        httpx.RemoteProtocolError("peer closed connection without sending complete message body"),
        httpx.ReadTimeout("timed out"),
        httpx.ConnectError("connection refused"),
        httpx.ReadError("no cause: not a reset"),
        httpx.WriteError("disk full"),
    ],
)
def test_other_failures_are_not_retried(error: Exception) -> None:
    inner = Scripted(error, 200)
    transport = RetryClosedKeepAlive(inner)
    with httpx.Client(transport=transport) as client, pytest.raises(type(error)):
        client.post("http://gateway/classify", json={})
    assert inner.calls == 1 and transport.retries == 0


def test_a_5xx_answer_is_returned_not_retried() -> None:
    inner = Scripted(502, 200)
    with httpx.Client(transport=RetryClosedKeepAlive(inner)) as client:
        assert client.post("http://gateway/classify", json={}).status_code == 502
    assert inner.calls == 1


def _reset() -> httpx.ReadError:
    try:
        try:
            raise ConnectionResetError(104, "Connection reset by peer")
        except ConnectionResetError as exc:
            raise httpx.ReadError("[Errno 104] Connection reset by peer") from exc
    except httpx.ReadError as error:
        return error


def test_a_reset_connection_is_retried_once() -> None:
    inner = Scripted(_reset(), 200)
    transport = RetryClosedKeepAlive(inner)
    with httpx.Client(transport=transport) as client:
        assert client.post("http://gateway/classify", json={}).status_code == 200
    assert inner.calls == 2 and transport.retries == 1
