"""The rewrite of a mirrored request to the pinned route, and its place in front of BentoML's own middlewares (the
served behaviour, counted by BentoML's metrics, is tests/integration/test_shadow.py's)."""

from __future__ import annotations

import asyncio
from typing import Any

from core import contracts
from services.model_server.mirrored import MirroredToPinned, install_outermost


def _seen_path(path: str, host: str) -> str:
    seen: list[str] = []

    async def app(scope: dict[str, Any], _receive: Any, _send: Any) -> None:
        seen.append(scope["path"])

    scope = {"type": "http", "path": path, "raw_path": path.encode(), "headers": [(b"host", host.encode())]}
    asyncio.run(MirroredToPinned(app)(scope, None, None))
    return seen[0]


def test_a_marked_prediction_is_answered_on_the_pinned_route() -> None:
    assert _seen_path(contracts.PREDICT_ROUTE, "10.0.3.7:3000-shadow") == contracts.PINNED_PREDICT_ROUTE


def test_unmarked_requests_and_other_routes_are_left_alone() -> None:
    assert _seen_path(contracts.PREDICT_ROUTE, "10.0.3.7:3000") == contracts.PREDICT_ROUTE
    assert _seen_path(contracts.READINESS_ROUTE, "10.0.3.7:3000-shadow") == contracts.READINESS_ROUTE


def test_it_runs_before_bentomls_metrics_middleware_however_often_installed() -> None:
    from _bentoml_impl.server.app import ServiceAppFactory

    install_outermost()
    install_outermost()
    getter = ServiceAppFactory.middlewares.fget  # type: ignore[attr-defined]
    assert getter.__name__ == "mirrored_first"
    # The wrapped original is BentoML's: the first entry of what it returns is ours, once.
    assert getter.__closure__ is not None
    original = next(cell.cell_contents for cell in getter.__closure__ if isinstance(cell.cell_contents, property))
    assert original.fget.__name__ == "middlewares"
