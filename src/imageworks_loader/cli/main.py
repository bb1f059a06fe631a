"""The ``imageworks-loader`` command line: a thin Typer layer over :mod:`imageworks_loader.services`.

Each command parses its options, calls one Loader method and prints a rich table (people) or JSON
(``--json``, scripts). Errors become one clear line on stderr and an exit code: 0 success, 1 the
operation failed, 2 usage error. Heavy imports (FastAPI, uvicorn, httpx, Pillow) happen inside the
commands that need them so ``list`` and ``--help`` start fast.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from ..settings import DEFAULT_REGISTRY
from ._errors import handle_errors
from ._output import Out

__all__ = ["app", "run"]

app = typer.Typer(
    name="imageworks-loader",
    help="Deterministic registry, selection, version locks, vision probes and metrics for local model servers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

NameArg = Annotated[str, typer.Argument(help="Model name or alias, as in the registry.", show_default=False)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of a table.")]


class State:
    """Per-invocation state: the registry path, and settings and a Loader built on first use."""

    def __init__(self, registry: Path) -> None:
        self.registry = registry
        self._settings: Any = None
        self._loader: Any = None

    @property
    def settings(self) -> Any:
        """Settings from the environment (a bad value raises ValueError: a usage error)."""
        if self._settings is None:
            from ..settings import Settings

            self._settings = Settings.from_env(registry_path=self.registry)
        return self._settings

    def with_timeout(self, timeout: float | None) -> Any:
        """The settings, with ``--timeout`` (when given) as the per-request backend timeout."""
        from dataclasses import replace

        return self.settings if timeout is None else replace(self.settings, probe_timeout=timeout)

    @property
    def loader(self) -> Any:
        if self._loader is None:
            from ..services import Loader

            self._loader = Loader(self.settings.registry_path, lock_timeout=self.settings.lock_timeout)
        return self._loader


@app.callback()
def main(
    ctx: typer.Context,
    registry: Annotated[
        Path | None,
        typer.Option(
            "--registry",
            envvar="IMAGEWORKS_REGISTRY",
            help=f"Registry JSON file [default: {DEFAULT_REGISTRY}].",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Deterministic registry, selection, version locks, vision probes and metrics for local model servers."""
    ctx.obj = State(registry or DEFAULT_REGISTRY)


def _state(ctx: typer.Context) -> State:
    return ctx.find_object(State)  # type: ignore[return-value]


@app.command("list")
def list_models(
    ctx: typer.Context,
    role: Annotated[str | None, typer.Option("--role", help="Only models that list this role.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List models with their backend, capabilities, lock and vision status.

    Examples:
      imageworks-loader list
      imageworks-loader list --role caption --json
    """
    out = Out()
    with handle_errors(out):
        models = _state(ctx).loader.list_models(role)
        if as_json:
            out.json([m.to_dict() for m in models])
            return
        out.models_table(models, role=role)


@app.command("select")
def select(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="Model name or alias.", show_default=False)] = None,
    role: Annotated[str | None, typer.Option("--role", help="Pick the best model for a role instead.")] = None,
    require: Annotated[
        list[str] | None,
        typer.Option("--require", help="Required capability (repeatable): vision, tools, embedding, ..."),
    ] = None,
    require_vision: Annotated[bool, typer.Option("--require-vision", help="Same as --require vision.")] = False,
    check: Annotated[
        bool, typer.Option("--check", help="Also check the backend is up and serves the model (exit 1 if not).")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Resolve a model (by name, alias or role) to its endpoint, backend and internal model id.

    Refuses a model that lacks a required capability, and a locked model whose files changed since its
    last verify.

    Examples:
      imageworks-loader select qwen2.5-vl-7b-awq --require-vision
      imageworks-loader select --role caption --require tools --json
      imageworks-loader select qwen2.5-vl-7b-awq --check
    """
    out = Out()
    if (name is None) == (role is None):
        out.usage_error("give a model NAME or --role ROLE (exactly one).")
    required = list(require or []) + (["vision"] if require_vision else [])
    with handle_errors(out):
        state = _state(ctx)
        chosen = state.loader.select(
            name=name, role=role, require=required, check_backend=check, check_timeout=state.settings.check_timeout
        )
        out.emit(chosen, as_json=as_json, human=out.selection)


@app.command("verify")
def verify(ctx: typer.Context, name: NameArg, as_json: JsonOpt = False) -> None:
    """Hash every file of a model, record the hashes, and check them against its lock.

    Exit 1 with the changed, added and removed files when a locked model does not match.

    Examples:
      imageworks-loader verify qwen2.5-vl-7b-awq
    """
    out = Out()
    with handle_errors(out), out.hash_progress("Verifying") as (on_start, progress):
        result = _state(ctx).loader.verify(name, progress=progress, on_start=on_start)
    out.emit(result, as_json=as_json, human=out.verified)


@app.command("lock")
def lock(
    ctx: typer.Context,
    name: NameArg,
    set_expected: Annotated[
        bool,
        typer.Option("--set-expected", help="Fill an empty expected hash from the current files (hashes them)."),
    ] = False,
    replace: Annotated[
        bool,
        typer.Option("--replace", help="With --set-expected: replace an existing expected hash (accept new files)."),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Lock a model: select then refuses it whenever its files drift from the lock.

    Examples:
      imageworks-loader lock qwen2.5-vl-7b-awq --set-expected
      imageworks-loader lock qwen2.5-vl-7b-awq --set-expected --replace   # accept new files
    """
    out = Out()
    if replace and not set_expected:
        out.usage_error("--replace only makes sense with --set-expected.")
    with handle_errors(out), out.hash_progress("Hashing") as (on_start, progress):
        result = _state(ctx).loader.lock(
            name, set_expected=set_expected, replace=replace, progress=progress, on_start=on_start
        )
    out.emit(result, as_json=as_json, human=out.lock_result)


@app.command("unlock")
def unlock(ctx: typer.Context, name: NameArg, as_json: JsonOpt = False) -> None:
    """Unlock a model; its expected hash is kept for a later re-lock.

    Examples:
      imageworks-loader unlock qwen2.5-vl-7b-awq
    """
    out = Out()
    with handle_errors(out):
        result = _state(ctx).loader.unlock(name)
    out.emit(result, as_json=as_json, human=out.lock_result)


@app.command("probe-vision")
def probe_vision(
    ctx: typer.Context,
    name: NameArg,
    image: Annotated[
        Path | None,
        typer.Argument(help="Also describe this image (any file you can read).", show_default=False),
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option("--timeout", help="Seconds per backend request [default: IMAGEWORKS_PROBE_TIMEOUT or 60].",
                     min=0.1, show_default=False),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Prove a model sees: two rounds of "what colour is the shape?" with checked answers.

    Outcomes: verified (exit 0), not_supported (exit 1), unknown: backend down or timing out (exit 1,
    nothing recorded in the registry).

    Examples:
      imageworks-loader probe-vision qwen2.5-vl-7b-awq
      imageworks-loader probe-vision qwen2.5-vl-7b-awq photo.jpg --timeout 30 --json
    """
    out = Out()
    with handle_errors(out):
        settings = _state(ctx).with_timeout(timeout)
        loader = _state(ctx).loader
        loader.registry().get(name)  # unknown model before reading the image
        prepared = None
        if image is not None:
            from ..images import prepare_image, read_image_file

            prepared = prepare_image(read_image_file(image, str(image)), str(image))
        result = loader.probe_vision(
            name, image=prepared, timeout=settings.probe_timeout, connect_timeout=settings.connect_timeout
        )
    out.emit(result, as_json=as_json, human=out.probe)
    raise typer.Exit(0 if result.outcome.value == "verified" else 1)


@app.command("bench")
def bench(
    ctx: typer.Context,
    name: NameArg,
    requests: Annotated[int, typer.Option("--requests", "-n", help="How many requests.", min=1, max=10_000)] = 10,
    max_tokens: Annotated[int, typer.Option("--max-tokens", help="max_tokens per request.", min=1, max=8192)] = 64,
    prompt: Annotated[str | None, typer.Option("--prompt", help="The user message to send.")] = None,
    concurrency: Annotated[int, typer.Option("--concurrency", "-c", help="Requests in flight.", min=1, max=64)] = 1,
    timeout: Annotated[
        float | None, typer.Option("--timeout", help="Seconds per request [default: 60].", min=0.1, show_default=False)
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Measure a model: streamed chat completions, timed for TTFT and tokens per second.

    Samples go to the state database; the registry's performance block gets the new rolling summary
    (one write per bench). A failed run records nothing.

    Examples:
      imageworks-loader bench qwen2.5-vl-7b-awq --requests 20 --max-tokens 128
      imageworks-loader bench tiny --concurrency 4 --json
    """
    out = Out()
    from ..bench import DEFAULT_PROMPT, BenchRequest

    spec = BenchRequest(requests=requests, max_tokens=max_tokens, prompt=prompt or DEFAULT_PROMPT,
                        concurrency=concurrency)
    with handle_errors(out), out.count_progress("Benchmarking", requests) as advance:
        settings = _state(ctx).with_timeout(timeout)
        result = _state(ctx).loader.bench(
            name, spec, window=settings.metrics_window, timeout=settings.probe_timeout,
            connect_timeout=settings.connect_timeout, progress=advance,
        )
    out.emit(result, as_json=as_json, human=out.bench)


@app.command("metrics")
def metrics(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="One model (default: all).", show_default=False)] = None,
    as_json: JsonOpt = False,
) -> None:
    """Rolling time-to-first-token and throughput per model (from bench runs and pushed samples).

    Examples:
      imageworks-loader metrics
      imageworks-loader metrics qwen2.5-vl-7b-awq --json
    """
    out = Out()
    with handle_errors(out):
        window = _state(ctx).settings.metrics_window
        loader = _state(ctx).loader
        summaries = [loader.metrics(name, window=window)] if name else loader.all_metrics(window=window)
    if as_json:
        out.json(summaries[0].to_dict() if name else [s.to_dict() for s in summaries])
    else:
        out.metrics_table(summaries)


@app.command("serve")
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to bind.", min=0, max=65535)] = 8765,
    allow_unauthenticated: Annotated[
        bool,
        typer.Option(
            "--allow-unauthenticated",
            help="Allow a non-loopback --host without IMAGEWORKS_API_TOKEN (anyone on the network can write).",
        ),
    ] = False,
    log_level: Annotated[str, typer.Option("--log-level", help="uvicorn log level.")] = "info",
) -> None:
    """Serve the HTTP API (OpenAPI docs at /docs).

    Binds 127.0.0.1 by default. A non-loopback address needs IMAGEWORKS_API_TOKEN or
    --allow-unauthenticated.

    Examples:
      imageworks-loader serve
      IMAGEWORKS_API_TOKEN=secret imageworks-loader serve --host 0.0.0.0 --port 8765
    """
    out = Out()
    with handle_errors(out):
        settings = _state(ctx).settings
    if not _is_loopback(host) and not settings.api_token and not allow_unauthenticated:
        out.usage_error(
            f"refusing to bind {host} without IMAGEWORKS_API_TOKEN: anyone who can reach it could change the "
            "registry. Set IMAGEWORKS_API_TOKEN, or pass --allow-unauthenticated if that is intended."
        )
    with handle_errors(out):
        settings_loader_check(settings)
        import logging

        import uvicorn

        from ..api.app import create_app

        app_log = logging.getLogger("imageworks_loader")
        if not app_log.handlers:  # the loader's own warnings (auth rejections), beside uvicorn's lines
            handler = logging.StreamHandler()
            handler.setFormatter(logging.Formatter("%(levelname)s:     %(name)s: %(message)s"))
            app_log.addHandler(handler)
            level = logging.getLevelName(log_level.upper())
            app_log.setLevel(level if isinstance(level, int) else logging.INFO)

        uvicorn.run(
            create_app(settings),
            host=host,
            port=port,
            log_level=log_level,
            access_log=log_level == "debug",
            timeout_graceful_shutdown=5,
        )


def settings_loader_check(settings: Any) -> None:
    """Fail fast (exit 1, clear message) when the registry cannot be read at start-up."""
    from ..services import Loader

    Loader(settings.registry_path, lock_timeout=settings.lock_timeout).registry()


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def run() -> None:
    """Console-script entry point.

    Exits with ``os._exit`` once output is flushed: every write was already committed (registry
    renamed and fsynced, SQLite transactions done), and skipping interpreter teardown saves about
    0.1 s per 10,000 registry entries that would otherwise be freed one by one.
    """
    try:
        app()
        code: object = 0
    except SystemExit as exc:
        code = exc.code
    if isinstance(code, str):
        sys.stderr.write(code + "\n")
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code if isinstance(code, int) else 0 if code is None else 1)


if __name__ == "__main__":  # pragma: no cover
    run()
