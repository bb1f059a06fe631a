"""ASGI middleware in front of every route: bearer-token auth and a request body size limit.

Pure ASGI (no BaseHTTPMiddleware) so the fast paths stay fast and streaming bodies are counted as
they arrive instead of being buffered first.
"""

from __future__ import annotations

import hmac
import json
import logging
from typing import Any

__all__ = ["Guard"]

log = logging.getLogger("imageworks_loader.api")

_OPEN_PATHS = frozenset({"/healthz"})


def _reply(status: int, code: str, message: str, headers: list[tuple[bytes, bytes]] | None = None):
    body = json.dumps({"detail": {"error": code, "message": message}}).encode()

    async def send_it(send: Any) -> None:
        await send({
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                        *(headers or [])],
        })
        await send({"type": "http.response.body", "body": body})

    return send_it


class Guard:
    """Refuse unauthenticated requests (when a token is set) and bodies over ``max_body_bytes``."""

    def __init__(self, app: Any, *, token: str | None, max_body_bytes: int) -> None:
        self.app = app
        self.token = token.encode() if token else None
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.token is not None and scope["path"] not in _OPEN_PATHS and not self._authorised(scope):
            client = scope.get("client") or ("?", 0)
            log.warning("rejected %s %s from %s: missing or wrong bearer token", scope["method"], scope["path"], client[0])
            await _reply(
                401, "unauthorized",
                "Missing or wrong bearer token. Send 'Authorization: Bearer <IMAGEWORKS_API_TOKEN>'.",
                [(b"www-authenticate", b"Bearer")],
            )(send)
            return
        declared = self._content_length(scope)
        if declared is not None:
            if declared > self.max_body_bytes:
                await self._too_large(send)
                return
            await self.app(scope, receive, send)  # the server enforces the declared length
            return
        # Chunked or undeclared body: read it up to the limit first, then replay it to the app.
        chunks, seen, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, receive, send)  # disconnected: let the app see it
                return
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > self.max_body_bytes:
                await self._too_large(send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _authorised(self, scope: dict[str, Any]) -> bool:
        for key, value in scope["headers"]:
            if key == b"authorization":
                scheme, _, given = value.partition(b" ")
                return scheme.lower() == b"bearer" and hmac.compare_digest(given.strip(), self.token or b"")
        return False

    @staticmethod
    def _content_length(scope: dict[str, Any]) -> int | None:
        for key, value in scope["headers"]:
            if key == b"content-length":
                try:
                    return int(value)
                except ValueError:
                    return None
        return None

    async def _too_large(self, send: Any) -> None:
        await _reply(
            413, "body_too_large",
            f"Request body is over the {self.max_body_bytes // (1 << 20)} MiB limit. Send a smaller body "
            "(images: downscale, or use image_path on the server).",
        )(send)
