"""The shadow relay of the local runtime: the gateway's `mirror` target during a release's shadow phase.

nginx's mirror subrequest holds the client's keep-alive connection until it completes, so a candidate that hangs
would delay each client's next request by the mirror's timeout. The relay answers every mirrored request at once
(202) and sends it on to the candidate itself, from a bounded queue with its own timeout: a slow, failing or absent
candidate costs clients nothing, and what the candidate could not answer is counted, not retried. Envoy's
RequestMirror in the cluster is fire-and-forget already; the relay has no cluster counterpart. It marks each request
as Envoy marks a mirrored one (`contracts.SHADOW_HOST_SUFFIX` on the Host), so the candidate's server treats both
alike: answered on its pinned route, never counted by the canary analysis, logged as mirrored.

The candidate logs its answers under the request id the gateway gave the request (`X-Request-ID`), as stable does:
the shadow comparison pairs them from the two inference logs (pipelines/shadow/).

    python -m infra.local.shadow_relay --port 18086 --target http://127.0.0.1:13001 --model NAME --version 4
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, generate_latest

from core import contracts, endpoints, env
from core import promql as q
from core.policy import policy
from infra.local.paths import REPO_ROOT, state_dir
from infra.local.supervisor import VENV_BIN, Program

PROGRAM = "shadow-relay"
MIRROR_PATH = "/mirror"
HEALTH_PATH = "/healthz"
LABELS = ("model_name", "model_version")


@dataclass(frozen=True)
class Mirrored:
    request_id: str
    body: bytes


class Relay:
    """Takes mirrored requests without waiting on the candidate; `concurrency` workers send them on."""

    def __init__(self, target: str, model: str, version: int, *, timeout: float, queue_size: int, concurrency: int):
        self.target = target.rstrip("/") + contracts.PREDICT_ROUTE
        self.host = urlsplit(target).netloc + contracts.SHADOW_HOST_SUFFIX
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.queue: asyncio.Queue[Mirrored] = asyncio.Queue(maxsize=queue_size)
        self.concurrency = concurrency
        self.registry = CollectorRegistry()
        self.outcomes = Counter(
            q.SHADOW_REQUESTS_TOTAL.removesuffix("_total"),
            "Mirrored requests by outcome: answered, error (the candidate's 4xx/5xx or a refused connection), "
            "timeout, dropped (queue full)",
            (*LABELS, "outcome"),
            registry=self.registry,
        )
        self.waiting = Gauge(
            q.SHADOW_QUEUE, "Mirrored requests waiting for the candidate", LABELS, registry=self.registry
        )
        self.labels = {"model_name": model, "model_version": str(version)}
        self._workers: list[asyncio.Task[None]] = []
        self._session: aiohttp.ClientSession | None = None

    def count(self, outcome: str) -> None:
        self.outcomes.labels(**self.labels, outcome=outcome).inc()

    async def mirror(self, request: web.Request) -> web.Response:
        item = Mirrored(request.headers.get(contracts.REQUEST_ID_HEADER, ""), await request.read())
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.count("dropped")
        self.waiting.labels(**self.labels).set(self.queue.qsize())
        return web.Response(status=202)

    async def _send(self, session: aiohttp.ClientSession, item: Mirrored) -> None:
        headers = {
            "Content-Type": "application/json",
            "Host": self.host,
            contracts.REQUEST_ID_HEADER: item.request_id,
        }
        try:
            async with session.post(self.target, data=item.body, headers=headers, timeout=self.timeout) as resp:
                await resp.read()
                self.count("answered" if resp.status < 400 else "error")
        except TimeoutError:
            self.count("timeout")
        except aiohttp.ClientError:
            self.count("error")

    async def _work(self, session: aiohttp.ClientSession) -> None:
        while True:
            item = await self.queue.get()
            self.waiting.labels(**self.labels).set(self.queue.qsize())
            await self._send(session, item)

    async def metrics(self, _request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(self.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def health(self, _request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "target": self.target, "waiting": self.queue.qsize()})

    async def on_startup(self, _app: web.Application) -> None:
        self._session = aiohttp.ClientSession()
        self._workers = [asyncio.create_task(self._work(self._session)) for _ in range(self.concurrency)]

    async def on_cleanup(self, _app: web.Application) -> None:
        for worker in self._workers:
            worker.cancel()
        for worker in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        if self._session is not None:
            await self._session.close()

    def app(self) -> web.Application:
        app = web.Application(client_max_size=policy().gateway.max_request_bytes)
        app.router.add_post(MIRROR_PATH, self.mirror)
        app.router.add_get("/metrics", self.metrics)
        app.router.add_get(HEALTH_PATH, self.health)
        app.on_startup.append(self.on_startup)
        app.on_cleanup.append(self.on_cleanup)
        return app


def relay_url() -> str:
    return f"http://{endpoints.HOST}:{policy().ports.shadow_relay}"


def program(model: str, version: int, target_port: int) -> Program:
    """The relay for candidate `version` of `model`, whose server listens on `target_port`."""
    s = policy().canary.shadow
    command = [str(VENV_BIN / "python"), "-m", "infra.local.shadow_relay", "--port", str(policy().ports.shadow_relay)]
    command += ["--target", f"http://{endpoints.HOST}:{target_port}", "--model", model, "--version", str(version)]
    command += ["--timeout", f"{s.request_timeout_seconds:g}", "--queue-size", str(s.queue_size)]
    command += ["--concurrency", str(s.concurrency)]
    relay_env = {env.STATE_DIR.name: str(state_dir()), env.PORT_OFFSET.name: str(env.PORT_OFFSET.get())}
    if env.POLICY.is_set():
        relay_env[env.POLICY.name] = str(env.POLICY.get())
    return Program(
        name=PROGRAM,
        command=command,
        env=relay_env,
        cwd=REPO_ROOT,
        priority=45,
        stopsignal="TERM",
        stopwaitsecs=5,
        startsecs=1,
        health_url=f"{relay_url()}{HEALTH_PATH}",
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--target", required=True, help="the candidate's server, e.g. http://127.0.0.1:13001")
    parser.add_argument("--model", required=True)
    parser.add_argument("--version", type=int, required=True)
    parser.add_argument("--timeout", type=float, required=True, help="seconds the candidate has for one request")
    parser.add_argument("--queue-size", type=int, required=True)
    parser.add_argument("--concurrency", type=int, required=True)
    args = parser.parse_args(argv)
    relay = Relay(
        args.target, args.model, args.version, timeout=args.timeout, queue_size=args.queue_size,
        concurrency=args.concurrency,
    )  # fmt: skip
    web.run_app(relay.app(), host=endpoints.HOST, port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
