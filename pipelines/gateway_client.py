"""How the platform's own programs call the gateway: an httpx transport that survives a traffic-split change.

Use: `httpx.Client(transport=RetryClosedKeepAlive(httpx.HTTPTransport(limits=...)), ...)`.

A weight change reloads nginx gracefully: in-flight requests finish on the old worker, but the old worker closes
its *idle* keep-alive connections. A client that picked such a connection from its pool just as nginx closed it
gets "Server disconnected without sending a response" (or a reset): the request never reached a model server.
HTTP/1.1 allows exactly this case to be retried on a new connection (RFC 9112 section 9.3.1), and `/classify` is
safe to retry (it changes nothing but the inference log). httpx does not do it by itself, so this transport does,
once, and counts it. Any other failure (timeout, refused connection, a malformed or cut response) is raised as
before: those are errors a user saw.
Decision record: docs/decisions/0113-retry-requests-on-connections-closed-by-a-reload.md.
"""

from __future__ import annotations

import threading

import httpx

# httpcore's words when the peer closed the connection before a single byte of the response.
CLOSED_BEFORE_RESPONSE = "Server disconnected without sending a response"


def closed_by_reload(exc: BaseException) -> bool:
    """The two ways a request on a connection nginx closed as idle fails: nginx's FIN arrived first (the response
    never comes), or the request landed in a socket nginx had just closed (the kernel answers with a reset)."""
    if isinstance(exc, httpx.RemoteProtocolError):
        return CLOSED_BEFORE_RESPONSE in str(exc)
    if isinstance(exc, httpx.ReadError | httpx.WriteError):
        cause: BaseException | None = exc
        while cause is not None:
            if isinstance(cause, ConnectionResetError | BrokenPipeError):
                return True
            cause = cause.__cause__ or cause.__context__
    return False


class RetryClosedKeepAlive(httpx.BaseTransport):
    """Retries a request once when its kept-alive connection was closed under it before any response arrived."""

    def __init__(self, transport: httpx.BaseTransport | None = None) -> None:
        self._transport = transport if transport is not None else httpx.HTTPTransport()
        self._lock = threading.Lock()
        self.retries = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return self._transport.handle_request(request)
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
            if not closed_by_reload(exc):
                raise
        with self._lock:
            self.retries += 1
        return self._transport.handle_request(request)

    def close(self) -> None:
        self._transport.close()
