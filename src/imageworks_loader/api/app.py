"""The FastAPI application factory. Everything it needs comes from :class:`Settings`."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from .. import __version__
from ..services import Loader
from ..settings import Settings
from .errors import register_error_handlers
from .guard import Guard
from .prom import PromMetrics
from .routes import ModelsCache, router

__all__ = ["create_app"]


def create_app(settings: Settings | None = None) -> Any:
    """Build the API app; returns the ASGI callable (the FastAPI app wrapped in the auth/size guard).

    The FastAPI app itself is reachable as ``.app`` on the result for tests and OpenAPI tools.
    """
    settings = settings or Settings.from_env()
    api = FastAPI(
        title="imageworks-loader",
        version=__version__,
        summary="Deterministic registry, selection, version locks, vision probes and metrics for local model servers.",
    )
    api.state.settings = settings
    api.state.loader = Loader(settings.registry_path, lock_timeout=settings.lock_timeout)
    api.state.models_cache = ModelsCache()
    api.state.prom = PromMetrics(api.state.loader, settings.metrics_window)
    register_error_handlers(api)
    api.include_router(router)
    return GuardedApp(api, settings)


class GuardedApp(Guard):
    """The guard with the FastAPI app under it, exposed as ``.app`` (and ``.openapi()``)."""

    def __init__(self, api: FastAPI, settings: Settings) -> None:
        super().__init__(api, token=settings.api_token, max_body_bytes=settings.max_body_bytes)

    def openapi(self) -> dict[str, Any]:
        return self.app.openapi()
