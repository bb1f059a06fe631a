"""HTTP routes: each parses the request, calls one Loader method and returns its result."""

from __future__ import annotations

import json
import threading
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..capabilities import CANONICAL, SYNONYMS
from ..schema import ALIAS_RE
from ..services import Loader
from ..store import Registry

__all__ = ["ModelsCache", "router"]

router = APIRouter()


class ErrorDetail(BaseModel):
    """Every error: a stable code, a message saying what, where and what to do next, and details."""

    model_config = ConfigDict(extra="allow")
    error: str
    message: str


class ErrorResponse(BaseModel):
    detail: ErrorDetail


# Statuses any route can answer: a bad token, a body over the limit, an invalid request, and a
# registry that cannot be read or written right now.
_COMMON = {
    401: "missing or wrong bearer token (when IMAGEWORKS_API_TOKEN is set)",
    413: "request body over the size limit",
    422: "the request is invalid (the message names each problem)",
    503: "the registry is invalid or busy; reads keep serving the last good copy",
}


def errors(**codes: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the given statuses (``e404="..."``) plus the common ones."""
    described = {**_COMMON, **{int(k[1:]): v for k, v in codes.items()}}
    return {status: {"model": ErrorResponse, "description": text} for status, text in sorted(described.items())}

# The pattern is documented, not enforced by pydantic: the loader's own check answers a bad name with a
# message that says what is wrong (InvalidName, 422) instead of "string should match pattern".
Name = Annotated[
    str,
    Field(min_length=1, max_length=128, description="Model name or alias.",
          json_schema_extra={"pattern": f"^{ALIAS_RE.pattern}$"}),
]


# Documented as the accepted names (matching is case-insensitive); checked by the loader, which names
# every unknown capability in one 422.
Capability = Annotated[
    str,
    Field(max_length=64, json_schema_extra={"enum": sorted({*CANONICAL, *(s for syns in SYNONYMS.values() for s in syns)})}),
]


class SelectRequest(BaseModel):
    """Give ``name`` (or an alias) or ``role``, not both."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"oneOf": [
        {"required": ["name"], "not": {"required": ["role"]}},
        {"required": ["role"], "not": {"required": ["name"]}},
    ]})
    # Absent means "not given"; an explicit null is refused (the schema says string, not nullable).
    name: Name = None  # type: ignore[assignment]
    role: Annotated[str, Field(min_length=1, max_length=128)] = None  # type: ignore[assignment]
    require_capabilities: list[Capability] = Field(default_factory=list, max_length=32)
    check_backend: bool = Field(False, description="Also check the backend is up and serves the model (424 if not).")

    @model_validator(mode="after")
    def _one_target(self) -> SelectRequest:
        if (self.name is None) == (self.role is None):
            raise ValueError("give exactly one of 'name' or 'role'")
        return self


class SelectResponse(BaseModel):
    name: str
    endpoint: str
    backend: str
    internal_model_id: str
    capabilities: dict[str, bool]
    locked: bool
    deprecated: bool
    display_name: str | None


class VerifyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name


class VerifyResponse(BaseModel):
    status: str
    name: str
    aggregate_sha256: str
    files: int
    bytes: int
    seconds: float
    locked: bool
    changes: dict[str, list[str]]


class ModelRow(BaseModel):
    name: str
    backend: str
    capabilities: dict[str, bool]
    locked: bool
    vision_ok: bool | None
    display_name: str | None
    deprecated: bool
    roles: list[str]
    backend_ok: bool | None = Field(None, description="Only with ?check=1: the backend serves the model now.")


class Health(BaseModel):
    status: str
    models: int
    reason: str | None = None


class ModelsCache:
    """Pre-serialised ``GET /v1/models`` bodies, rebuilt only when the registry snapshot changes."""

    def __init__(self) -> None:
        self._registry: Registry | None = None
        self._bodies: dict[str | None, bytes] = {}
        self._lock = threading.Lock()

    def body(self, loader: Loader, registry: Registry, role: str | None) -> bytes:
        with self._lock:
            if registry is not self._registry:
                self._registry, self._bodies = registry, {}
            cached = self._bodies.get(role)
        if cached is None:
            rows = [m.to_dict() for m in loader.list_models(role, registry)]
            cached = json.dumps(rows, ensure_ascii=False, separators=(",", ":")).encode()
            with self._lock:
                if registry is self._registry and len(self._bodies) < 256:
                    self._bodies[role] = cached
        return cached


def _json(data: Any) -> Response:
    """A pre-serialised JSON response for hot routes: the dicts are built to match the declared
    response model (the OpenAPI fuzz test checks it), so FastAPI's re-validation is skipped."""
    import orjson

    return Response(orjson.dumps(data), media_type="application/json")


def _loader(request: Request) -> Loader:
    return request.app.state.loader


def _registry(request: Request) -> Registry:
    registry, _stale = _loader(request).store.load_or_last_good()
    return registry


@router.get("/healthz", response_model=Health, tags=["health"], responses=errors())
def healthz(request: Request) -> Health:
    """Liveness, and whether the registry on disk is readable (``degraded`` says why not)."""
    from ..errors import LoaderError

    try:
        registry, stale = _loader(request).store.load_or_last_good()
    except LoaderError as exc:
        return Health(status="degraded", models=0, reason=exc.message.split("\n")[0])
    if stale is not None:
        reason = getattr(stale, "message", str(stale))
        return Health(status="degraded", models=len(registry.entries), reason=reason)
    return Health(status="ok", models=len(registry.entries))


@router.get("/v1/models", response_model=list[ModelRow], tags=["models"], responses=errors())
async def list_models(
    request: Request,
    role: Annotated[str | None, Query(max_length=128, description="Only models listing this role.")] = None,
    check: Annotated[bool, Query(description="Add backend_ok per model (backends asked concurrently).")] = False,
) -> Response:
    """Every model, sorted by name, with canonical capabilities."""
    registry = _registry(request)
    loader = _loader(request)
    if not check:
        # Served on the event loop: a cache hit is a dict lookup; a rebuild happens once per file change.
        body = request.app.state.models_cache.body(loader, registry, role)
        return Response(body, media_type="application/json")
    from starlette.concurrency import run_in_threadpool

    from ..selection import selection_of

    rows = [m.to_dict() for m in loader.list_models(role, registry)]
    selections = [selection_of(registry.get(r["name"])) for r in rows]
    status = await run_in_threadpool(
        loader.backend_status, selections, timeout=request.app.state.settings.check_timeout
    )
    for row in rows:
        row["backend_ok"] = status[row["name"]]
    return JSONResponse(rows)


@router.post(
    "/v1/select",
    response_model=SelectResponse,
    tags=["models"],
    responses=errors(e404="unknown model, or no model for the role", e409="missing capability or lock violation",
                     e424="check_backend: the backend is down or does not serve the model"),
)
def select(request: Request, body: SelectRequest) -> Response:
    """Where to reach a model: endpoint, backend and the id the backend knows it by."""
    settings = request.app.state.settings
    with request.app.state.prom.counted("select"):
        chosen = _loader(request).select(
            name=body.name, role=body.role, require=body.require_capabilities, registry=_registry(request),
            check_backend=body.check_backend, check_timeout=settings.check_timeout,
        )
    return _json(chosen.to_dict())


@router.post(
    "/v1/verify",
    response_model=VerifyResponse,
    tags=["integrity"],
    responses=errors(e404="unknown model", e409="lock violation (with the file diff) or a corrupt blob",
                     e422="invalid request, or the model's files are missing"),
)
def verify(request: Request, body: VerifyRequest) -> dict[str, Any]:
    """Rehash every file of the model, record the result, and check the lock."""
    with request.app.state.prom.counted("verify"):
        return _loader(request).verify(body.name).to_dict()


class ProbeRequest(BaseModel):
    """Probe ``name``; optionally also describe a caller image (``image_path`` or ``image_b64``, not both)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"not": {"required": ["image_path", "image_b64"]}})
    name: Name
    image_path: Annotated[str, Field(min_length=1, max_length=4096)] = None  # type: ignore[assignment]
    image_b64: Annotated[str, Field(min_length=1)] = None  # type: ignore[assignment]

    @model_validator(mode="after")
    def _one_image(self) -> ProbeRequest:
        if self.image_path is not None and self.image_b64 is not None:
            raise ValueError("give at most one of 'image_path' or 'image_b64'")
        return self


class ProbeRound(BaseModel):
    colour: str
    shape: str
    answer: str
    named: list[str]
    passed: bool
    latency_ms: float


class ProbeResponse(BaseModel):
    name: str
    outcome: str
    vision_ok: bool | None
    probe_version: str
    latency_ms: float
    timestamp: str
    rounds: list[ProbeRound]
    description: str | None
    image: dict[str, Any] | None
    error: str | None
    notes: str


@router.post(
    "/v1/probe/vision",
    response_model=ProbeResponse,
    tags=["probes"],
    responses=errors(e400="not an image", e403="image_path outside the image roots", e404="unknown model",
                     e413="image or body too large", e502="backend unreachable (outcome unknown)",
                     e504="backend timed out (outcome unknown)"),
)
def probe_vision(request: Request, body: ProbeRequest) -> Any:
    """Prove the model sees: a two-round colour challenge whose answers are checked."""
    from ..images import decode_b64, prepare_image, read_image_file, resolve_image_path
    from ..probe import Outcome

    settings = request.app.state.settings
    loader = _loader(request)
    _registry(request).get(body.name)  # 404 before looking at the image
    image = None
    if body.image_path is not None:
        path = resolve_image_path(body.image_path, settings.image_roots)
        image = prepare_image(read_image_file(path, "image_path"), "image_path")
    elif body.image_b64 is not None:
        image = prepare_image(decode_b64(body.image_b64), "image_b64")
    with request.app.state.prom.counted("probe_vision"):
        result = loader.probe_vision(
            body.name, image=image, timeout=settings.probe_timeout, connect_timeout=settings.connect_timeout
        )
    if result.outcome is Outcome.UNKNOWN:
        status = 504 if result.error_code == "backend_timeout" else 502
        return JSONResponse(
            {"detail": {"error": result.error_code or "backend_error", "message": result.error or "backend failed",
                        "outcome": "unknown", "result": result.to_dict()}},
            status_code=status,
        )
    return result.to_dict()


class SampleIn(BaseModel):
    """One request a client measured itself."""

    model_config = ConfigDict(extra="forbid")
    ttft_ms: float = Field(ge=0, le=86_400_000, allow_inf_nan=False)
    tokens_generated: int = Field(ge=0, le=10_000_000)
    duration_ms: float = Field(gt=0, le=86_400_000, allow_inf_nan=False)

    @model_validator(mode="after")
    def _ordered(self) -> SampleIn:
        if self.ttft_ms > self.duration_ms:
            raise ValueError("ttft_ms must not exceed duration_ms")
        return self


class SampleOut(BaseModel):
    ttft_ms: float
    tokens_generated: int
    duration_ms: float
    at: str


class MetricsOut(BaseModel):
    name: str
    window: int
    rolling_samples: int
    ttft_ms_avg: float | None
    ttft_ms_p50: float | None
    ttft_ms_p95: float | None
    throughput_toks_per_s_avg: float | None
    last_sample: SampleOut | None


class BenchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    requests: int = Field(10, ge=1, le=1000)
    max_tokens: int = Field(64, ge=1, le=8192)
    prompt: str = Field("Write one short sentence about the sea.", min_length=1, max_length=20_000)
    concurrency: int = Field(1, ge=1, le=64)


class BenchOut(BaseModel):
    name: str
    samples: list[SampleOut]
    summary: MetricsOut


PathName = Annotated[str, PathParam(min_length=1, max_length=128, json_schema_extra={"pattern": f"^{ALIAS_RE.pattern}$"})]


@router.get("/v1/models/{name}/metrics", response_model=MetricsOut, tags=["metrics"],
            responses=errors(e404="unknown model"))
def get_metrics(request: Request, name: PathName) -> Response:
    """Rolling TTFT (avg, p50, p95) and throughput over the last samples of the model."""
    return _json(_loader(request).metrics(name, window=request.app.state.settings.metrics_window).to_dict())


@router.post("/v1/models/{name}/metrics", response_model=MetricsOut, tags=["metrics"],
             responses=errors(e404="unknown model", e422="implausible sample"))
def push_metrics(request: Request, name: PathName, sample: SampleIn) -> dict[str, Any]:
    """Record a sample a client measured itself; returns the new summary."""
    import time

    from ..state import Sample

    loader = _loader(request)
    loader.add_samples(name, [Sample(sample.ttft_ms, sample.tokens_generated, sample.duration_ms, time.time())])
    return loader.metrics(name, window=request.app.state.settings.metrics_window).to_dict()


@router.post("/v1/models/{name}/bench", response_model=BenchOut, tags=["metrics"],
             responses=errors(e404="unknown model", e502="backend unreachable", e504="backend timed out"))
def bench(request: Request, name: PathName, spec: BenchIn) -> dict[str, Any]:
    """Send streamed chat completions, time them, record the samples and the summary."""
    from ..bench import BenchRequest

    settings = request.app.state.settings
    with request.app.state.prom.counted("bench"):
        result = _loader(request).bench(
            name, BenchRequest(**spec.model_dump()), window=settings.metrics_window,
            timeout=settings.probe_timeout, connect_timeout=settings.connect_timeout,
        )
    return result.to_dict()


@router.get("/metrics", tags=["health"], response_class=Response,
            responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text exposition"}, **errors()})
def prometheus(request: Request) -> Response:
    """Prometheus text: per-model TTFT and throughput, probe outcomes, select/verify counts, lock violations."""
    from prometheus_client import CONTENT_TYPE_LATEST

    return Response(request.app.state.prom.exposition(), media_type=CONTENT_TYPE_LATEST)
