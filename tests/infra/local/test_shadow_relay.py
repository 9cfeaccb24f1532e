"""The shadow relay against real HTTP servers on loopback: it answers the gateway's mirror at once, forwards body and
request id to the candidate with the mirror's Host mark (as Envoy's), and counts what the candidate did not answer
instead of waiting on it."""

from __future__ import annotations

import asyncio
import time

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from core import contracts
from infra.local.shadow_relay import MIRROR_PATH, Relay


def outcomes(relay: Relay) -> dict[str, float]:
    return {
        s.labels["outcome"]: s.value
        for metric in relay.registry.collect()
        for s in metric.samples
        if s.name.endswith("_total")
    }


async def _candidate(delay: float, seen: list[tuple[str, str, str, bytes]]) -> TestServer:
    async def answer(request: web.Request) -> web.Response:
        request_id = request.headers.get(contracts.REQUEST_ID_HEADER, "")
        seen.append((request.path, request.host, request_id, await request.read()))
        await asyncio.sleep(delay)
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post(contracts.PREDICT_ROUTE, answer)
    server = TestServer(app)
    await server.start_server()
    return server


async def _mirror(relay: Relay, n: int) -> tuple[list[int], float]:
    async with TestClient(TestServer(relay.app())) as client:
        started = time.monotonic()
        statuses = []
        for i in range(n):
            resp = await client.post(MIRROR_PATH, data=b'{"texts": ["x"]}', headers={"X-Request-ID": f"id-{i}"})
            statuses.append(resp.status)
        took = time.monotonic() - started
        await asyncio.sleep(0.6)  # the workers' turn
        return statuses, took


def test_forwards_body_and_request_id_marked_as_mirrored() -> None:
    async def scenario() -> tuple[list[tuple[str, str, str, bytes]], dict[str, float], str]:
        seen: list[tuple[str, str, str, bytes]] = []
        candidate = await _candidate(0.0, seen)
        url = candidate.make_url("")
        relay = Relay(str(url), "m", 4, timeout=2, queue_size=10, concurrency=2)
        statuses, _ = await _mirror(relay, 3)
        await candidate.close()
        assert statuses == [202, 202, 202]
        return seen, outcomes(relay), str(url.raw_authority)

    seen, counted, authority = asyncio.run(scenario())
    host = authority + contracts.SHADOW_HOST_SUFFIX
    assert contracts.is_mirrored_host(host)
    assert sorted(seen) == [(contracts.PREDICT_ROUTE, host, f"id-{i}", b'{"texts": ["x"]}') for i in range(3)]
    assert counted == {"answered": 3.0}


def test_a_hanging_candidate_is_not_waited_on_and_its_requests_time_out() -> None:
    async def scenario() -> tuple[list[int], float, dict[str, float]]:
        candidate = await _candidate(30.0, [])  # answers after the relay's timeout: a hang
        relay = Relay(str(candidate.make_url("")), "m", 4, timeout=0.3, queue_size=10, concurrency=2)
        statuses, took = await _mirror(relay, 4)
        await asyncio.sleep(0.5)
        counted = outcomes(relay)
        await candidate.close()
        return statuses, took, counted

    statuses, took, counted = asyncio.run(scenario())
    assert statuses == [202] * 4 and took < 0.3, "the mirror got its answer before any timeout could pass"
    assert counted.get("timeout", 0) >= 2  # the two workers' first requests timed out; none was answered
    assert "answered" not in counted


def test_a_full_queue_drops_and_counts_instead_of_waiting() -> None:
    async def scenario() -> tuple[list[int], dict[str, float]]:
        candidate = await _candidate(30.0, [])
        relay = Relay(str(candidate.make_url("")), "m", 4, timeout=5, queue_size=2, concurrency=1)
        statuses, _ = await _mirror(relay, 8)
        counted = outcomes(relay)
        await candidate.close()
        return statuses, counted

    statuses, counted = asyncio.run(scenario())
    # One in flight, two waiting, the other five dropped: all of them answered at once.
    assert statuses == [202] * 8 and counted.get("dropped") == 5


def test_an_absent_candidate_counts_errors() -> None:
    relay = Relay("http://127.0.0.1:9", "m", 4, timeout=1, queue_size=10, concurrency=1)  # nothing listens on 9
    statuses, _ = asyncio.run(_mirror(relay, 2))
    assert statuses == [202, 202] and outcomes(relay) == {"error": 2.0}
