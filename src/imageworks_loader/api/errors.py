"""One place where the API turns errors into status codes and JSON bodies.

Every error body is ``{"detail": {"error": code, "message": text, ...}}``. Nothing a client sends can
produce a 500, and no traceback or server filesystem path leaves the process.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import errors as e

__all__ = ["error_response", "register_error_handlers", "status_for"]

log = logging.getLogger("imageworks_loader.api")

# Most specific first: the first matching class decides the status.
_STATUS: tuple[tuple[type[e.LoaderError], int], ...] = (
    (e.ModelNotFound, 404),
    (e.NoModelForRole, 404),
    (e.MissingCapabilities, 409),
    (e.LockViolation, 409),
    (e.CorruptArtifact, 409),
    (e.ArtifactsMissing, 422),
    (e.NotAnImage, 400),
    (e.ImageTooLarge, 413),
    (e.ImagePathNotAllowed, 403),
    (e.RequestError, 422),
    (e.BackendTimeout, 504),
    (e.BackendNotReady, 424),
    (e.BackendNotServing, 424),
    (e.BackendError, 502),
    (e.LockTimeout, 503),
    (e.RegistryError, 503),
)


def status_for(error: e.LoaderError) -> int:
    for cls, status in _STATUS:
        if isinstance(error, cls):
            return status
    return 500


def error_response(status: int, code: str, message: str, headers: Mapping[str, str] | None = None,
                   **extra: Any) -> JSONResponse:
    return JSONResponse({"detail": {"error": code, "message": message, **extra}}, status_code=status,
                        headers=headers)


# An absolute POSIX path inside a message (not the "//host" of a URL): what a client must not learn.
_ABS_PATH = re.compile(r"(?<![\w:/.])/(?:[^\s'\",;()]+)")


def _redact_text(text: str, registry: str) -> str:
    return _ABS_PATH.sub("<server path>", text.replace(registry, os.path.basename(registry)))


def _redact(app: FastAPI, body: dict[str, Any]) -> dict[str, Any]:
    """Messages say what failed without the server's filesystem paths (the CLI shows them in full)."""
    registry = str(app.state.settings.registry_path.resolve())
    out: dict[str, Any] = {}
    for k, v in body.items():
        if isinstance(v, str):
            v = _redact_text(v, registry)
        elif isinstance(v, list):
            v = [_redact_text(x, registry) if isinstance(x, str) else x for x in v]
        out[k] = v
    return out


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path (Starlette's own 405 names only the first route's)."""
    from starlette.routing import Match

    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches({**request.scope, "method": "GET"})
        if match is not Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
        for method in getattr(route, "methods", None) or ():
            m, _ = route.matches({**request.scope, "method": method})
            if m is Match.FULL:
                methods.add(method)
    return sorted(methods)


def register_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(e.LoaderError)
    async def loader_error(request: Request, exc: e.LoaderError) -> JSONResponse:
        status = status_for(exc)
        body = _redact(app, exc.to_dict())
        return JSONResponse({"detail": body}, status_code=status)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
            problems.append({"field": loc, "problem": err.get("msg", "invalid")})
        summary = "; ".join(f"{p['field']}: {p['problem']}" for p in problems[:5])
        return error_response(
            422, "invalid_request", f"The request is invalid: {summary}. See /docs for the schema.",
            problems=problems,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if isinstance(exc.detail, dict):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
        if exc.status_code == 400 and exc.detail == "There was an error parsing the body":
            # FastAPI's answer to a body that is not even text; same family as malformed JSON.
            return error_response(422, "invalid_request", "The request body is not valid UTF-8 JSON. See /docs.")
        code = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized"}.get(exc.status_code, "http_error")
        message = str(exc.detail)
        if exc.status_code == 404:
            message = f"No such endpoint: {request.method} {request.url.path}. See /docs."
        headers = exc.headers
        if exc.status_code == 405:
            allowed = _allowed_methods(request)
            headers = {**(headers or {}), "Allow": ", ".join(allowed)}
            message = f"{request.method} is not allowed on {request.url.path}; use {' or '.join(allowed)}. See /docs."
        return error_response(exc.status_code, code, message, headers=headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        # A bug, not a client error: log it fully here, tell the client nothing internal.
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(500, "internal_error", "Internal error; the server log has the details.")
