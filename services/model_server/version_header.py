"""`X-Model-Version` on every answer of a single-version server (generate, embed, rag) once its model is loaded."""

from __future__ import annotations

from typing import Any, ClassVar

from core import contracts


class VersionHeaderMiddleware:
    """ASGI middleware; the service sets `VersionHeaderMiddleware.version` when its model is loaded (one model per
    process, so a class attribute is the process's answer)."""

    version: ClassVar[int | None] = None

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        version = VersionHeaderMiddleware.version
        if scope["type"] != "http" or version is None:
            await self.app(scope, receive, send)
            return
        header = (contracts.VERSION_HEADER.lower().encode(), str(version).encode())

        async def send_with_header(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), header]}
            await send(message)

        await self.app(scope, receive, send_with_header)
