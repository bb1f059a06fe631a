"""Shared fixtures: registries and model folders on tmp_path, a real loader server, the CLI."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from .helpers import entry, write_registry

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    """A small model folder: config, two weight shards, a nested tokenizer file."""
    d = tmp_path / "models" / "tiny"
    (d / "tokenizer").mkdir(parents=True)
    (d / "config.json").write_text('{"hidden_size": 64}\n')
    (d / "model-00001-of-00002.safetensors").write_bytes(os.urandom(300_000))
    (d / "model-00002-of-00002.safetensors").write_bytes(os.urandom(123_457))
    (d / "tokenizer" / "tokenizer.json").write_text('{"version": "1.0"}')
    return d


@pytest.fixture
def registry_path(tmp_path: Path, model_dir: Path) -> Path:
    """A registry with a local model (tiny), a vision model, role candidates and a deprecated entry."""
    path = tmp_path / "configs" / "model_registry.json"
    write_registry(path, [
        entry("tiny", backend="llamacpp", model_path=str(model_dir), aliases=["tiny-alias"],
              roles=["keywords"], role_priority={"keywords": 20}),
        entry("vision-a", backend="vllm", capabilities={"vision": True, "tools": True},
              roles=["caption", "keywords"], role_priority={"caption": 10}, served_model_id="org/vision-a"),
        entry("vision-b", backend="ollama", capabilities={"image": True}, roles=["caption"],
              role_priority={"caption": 10}, served_model_id="vision-b:7b", host="gpu-box"),
        entry("old", backend="vllm", roles=["caption", "keywords"], role_priority={"caption": 1, "keywords": 1},
              deprecated=True),
    ])
    return path


@pytest.fixture
def loader(registry_path: Path) -> Any:
    from imageworks_loader.services import Loader

    return Loader(registry_path)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMAGEWORKS_")}
    env.update(extra)
    return env


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in a subprocess (as a user would), capturing output."""
    return subprocess.run(
        [sys.executable, "-m", "imageworks_loader", *args],
        capture_output=True, text=True, cwd=cwd, env=env or cli_env(), timeout=timeout, stdin=subprocess.DEVNULL,
    )


class ServerProcess:
    """``imageworks-loader serve`` in a subprocess on a free loopback port."""

    def __init__(self, registry: Path, *, env: dict[str, str] | None = None, cwd: Path | None = None,
                 args: tuple[str, ...] = ()) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.registry = registry
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "imageworks_loader", "--registry", str(registry), "serve",
             "--port", str(self.port), "--log-level", "warning", *args],
            env=env or cli_env(), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self._wait_ready()

    def _wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early: {self.proc.stdout.read() if self.proc.stdout else ''}")
            try:
                httpx.get(self.url + "/healthz", timeout=1.0)
                return
            except httpx.TransportError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("server did not become ready")

    def client(self, **kw: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30.0, **kw)

    def stop(self) -> str:
        """Stop the server; returns (and keeps in ``output``) everything it printed."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc.stdout and not self.proc.stdout.closed:
            self.output = self.proc.stdout.read()
            self.proc.stdout.close()
        return getattr(self, "output", "")


@pytest.fixture
def server(registry_path: Path) -> Iterator[ServerProcess]:
    srv = ServerProcess(registry_path, cwd=registry_path.parent)
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def api(registry_path: Path, tmp_path: Path) -> Iterator[Any]:
    """An in-process TestClient over the full guarded app (for fast status-code tables)."""
    from fastapi.testclient import TestClient

    from imageworks_loader.api.app import create_app
    from imageworks_loader.settings import Settings

    app = create_app(Settings(registry_path=registry_path, image_roots=(tmp_path,)))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The real llama.cpp server on tiny generated models, shared by the session."""
    from .backend.llama_server import LlamaServer

    srv = LlamaServer(tmp_path_factory.mktemp("llama")).start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def reference() -> Iterator[Any]:
    """A reference OpenAI-compatible backend that really looks at images (see backend/reference.py)."""
    from .backend.reference import ReferenceBackend

    with ReferenceBackend() as ref:
        yield ref


def backend_registry(path: Path, endpoint: str, models: dict[str, str], **extra: Any) -> Path:
    """A registry whose entries (name -> served model id) all point at ``endpoint``."""
    return write_registry(path, [
        entry(name, backend="llamacpp", base_url=endpoint, served_model_id=model_id, **extra)
        for name, model_id in models.items()
    ])
