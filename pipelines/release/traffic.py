"""A bounded open-loop traffic generator: request bodies through the gateway at a fixed rate (the classifier's
validation texts; a RAG model's labelled questions).

Nothing else sends traffic to the local runtime, and a canary cannot be judged without requests, so
`mlp release start --drive-traffic RPS` runs this beside the analysis. Open loop: requests leave on a fixed
schedule whatever the latency (a slow canary cannot slow its own load down and hide); bounded: at most
`max_in_flight` requests are outstanding, and a tick that would exceed it is counted as `skipped`, not queued.
"""

from __future__ import annotations

import itertools
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx

from core import contracts
from pipelines.gateway_client import RetryClosedKeepAlive


@dataclass
class TrafficStats:
    sent: int = 0
    ok: int = 0
    non_2xx: int = 0  # HTTP answers outside 2xx, as a client sees them
    transport_errors: int = 0  # no HTTP answer at all (connection refused, timeout)
    skipped: int = 0  # ticks dropped because max_in_flight requests were outstanding
    retried: int = 0  # sent again: a reload closed the idle keep-alive connection (pipelines/gateway_client.py)
    by_status: Counter[int] = field(default_factory=Counter)
    by_version: Counter[str] = field(default_factory=Counter)

    @property
    def client_errors(self) -> int:
        """What a user would have seen as a failure."""
        return self.non_2xx + self.transport_errors

    def as_dict(self) -> dict[str, object]:
        return {
            "sent": self.sent,
            "ok": self.ok,
            "non_2xx": self.non_2xx,
            "transport_errors": self.transport_errors,
            "skipped": self.skipped,
            "retried": self.retried,
            "by_status": {str(k): v for k, v in sorted(self.by_status.items())},
            "by_version": dict(sorted(self.by_version.items())),
        }


class TrafficDriver:
    def __init__(
        self,
        url: str,
        api_key: str,
        bodies: Sequence[Mapping[str, object]],
        rps: float,
        max_in_flight: int = 32,
        timeout: float = 10.0,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        if rps <= 0:
            raise ValueError("--drive-traffic needs a rate above 0 requests per second")
        if not bodies:
            raise ValueError("the traffic driver needs at least one request body to send")
        self.url = url
        self.rps = rps
        self.max_in_flight = max_in_flight
        self.stats = TrafficStats()
        self._bodies = itertools.cycle(bodies)
        self._transport = RetryClosedKeepAlive(
            httpx.HTTPTransport(limits=httpx.Limits(max_connections=max_in_flight), verify=verify)
        )
        self._client = httpx.Client(
            headers={contracts.API_KEY_HEADER: api_key}, timeout=timeout, transport=self._transport
        )
        self._pool = ThreadPoolExecutor(max_workers=max_in_flight, thread_name_prefix="traffic")
        self._in_flight = threading.Semaphore(max_in_flight)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="traffic-driver", daemon=True)

    def start(self) -> TrafficDriver:
        self._thread.start()
        return self

    def stop(self) -> TrafficStats:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self._pool.shutdown(wait=True)  # let outstanding requests finish: they count
        self._client.close()
        self.stats.retried = self._transport.retries
        return self.stats

    def __enter__(self) -> TrafficDriver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _loop(self) -> None:
        period = 1.0 / self.rps
        next_at = time.monotonic()
        while not self._stop.is_set():
            if self._in_flight.acquire(blocking=False):
                with self._lock:
                    self.stats.sent += 1
                self._pool.submit(self._send, next(self._bodies))
            else:
                with self._lock:
                    self.stats.skipped += 1
            next_at += period
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def _send(self, body: Mapping[str, object]) -> None:
        try:
            resp = self._client.post(self.url, json=body)
        except httpx.HTTPError:
            with self._lock:
                self.stats.transport_errors += 1
            return
        finally:
            self._in_flight.release()
        version = ""
        if resp.is_success:
            try:
                version = str(resp.json().get("model_version", ""))
            except ValueError:
                version = ""
        with self._lock:
            self.stats.by_status[resp.status_code] += 1
            if resp.is_success:
                self.stats.ok += 1
                self.stats.by_version[version or "?"] += 1
            else:
                self.stats.non_2xx += 1


def gateway_traffic(rps: float, model: str | None = None) -> Callable[[], TrafficDriver] | None:
    """A factory of drivers sending `model`'s traffic (default: the default classifier) through the local gateway at
    `rps`; None when rps <= 0.

    A factory, not a driver: the release starts the traffic only once the canary serves (and a resumed release
    starts its own), so nothing runs while the gate measures latency on the same machine.
    """
    if rps <= 0:
        return None

    def make() -> TrafficDriver:
        from core import endpoints
        from core.policy import policy
        from infra.local import tls
        from infra.local.secrets import api_key

        route, bodies = model_traffic(model or policy().release.default_model)
        return TrafficDriver(
            f"{endpoints.gateway_url()}{route}", api_key("demo"), bodies, rps, verify=tls.client_context()
        )

    return make


def model_traffic(model: str) -> tuple[str, list[dict[str, object]]]:
    """The route and request bodies of a model's release traffic. The classifier: validation texts on `/classify`.
    A RAG model: the labelled on-call questions, retrieval only: both versions share the one generator, which
    answers one question at a time on CPU, far below the rate an analysis window needs (docs/rag.md, Releases)."""
    from core.policy import policy

    task = policy().model(model).task
    if task == "classify":
        from pipelines.data import load_split

        return contracts.PREDICT_ROUTE, [{"texts": [ex.text]} for ex in load_split("validation")]
    if task == "rag":
        from pipelines.rag.evaluate import read_questions

        questions = [{"question": q.question, "generate": False} for q in read_questions()]
        return contracts.model_route(model, "rag"), questions
    raise ValueError(f"{model} is a {task} model: no release traffic for it (released by replacement)")
