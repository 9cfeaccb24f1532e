"""A mirrored request, answered where the canary analysis does not look.

Envoy appends `-shadow` to the Host of every request it mirrors (the Gateway API's RequestMirror filter), and the
local shadow relay does the same (`contracts.SHADOW_HOST_SUFFIX`). Such a request is answered on the pinned route:
BentoML's request metrics label it with that endpoint, which the canary analysis and the SLO rules do not select.

BentoML's metrics middleware reads the path first of all middlewares, before any a service adds
(`Service.add_asgi_middleware` places them inside it), so the rewrite is put in front of BentoML's own list.
`tests/integration/test_shadow.py` checks the endpoint label a mirrored request gets, against the pinned BentoML.
"""

from __future__ import annotations

from typing import Any

from core import contracts

PINNED = contracts.PINNED_PREDICT_ROUTE


def host(scope: dict[str, Any]) -> str:
    return next((v.decode("latin-1") for k, v in scope.get("headers", []) if k == b"host"), "")


class MirroredToPinned:
    """ASGI middleware: `POST /classify` with the mirror's Host mark becomes `POST /classify/pinned`."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if (
            scope["type"] == "http"
            and scope.get("path") == contracts.PREDICT_ROUTE
            and contracts.is_mirrored_host(host(scope))
        ):
            scope = {**scope, "path": PINNED, "raw_path": PINNED.encode()}
        await self.app(scope, receive, send)


def install_outermost() -> None:
    """Put `MirroredToPinned` first in the middleware list of BentoML's service app (idempotent)."""
    from _bentoml_impl.server.app import ServiceAppFactory
    from starlette.middleware import Middleware

    current: Any = ServiceAppFactory.middlewares
    if current.fget.__name__ == "mirrored_first":
        return

    def mirrored_first(self: Any) -> list[Middleware]:
        return [Middleware(MirroredToPinned), *current.fget(self)]

    ServiceAppFactory.middlewares = property(mirrored_first)
