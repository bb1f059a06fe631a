"""Run llama-cpp-python's OpenAI-compatible server on the tiny generated models.

``LlamaServer(folder)`` writes the fixtures, a multi-model config (text, vision, embedding) bound to a
free loopback port, starts ``python -m llama_cpp.server``, waits until ``/v1/models`` answers, and on
``stop()`` terminates it and its whole process group so nothing is left behind.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from .gguf_models import TinyModels, write_tiny_models

TEXT_ID, VISION_ID, EMBED_ID = "tiny-text", "tiny-vision", "tiny-embed"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LlamaServer:
    """A real llama.cpp model server serving ``tiny-text``, ``tiny-vision`` and ``tiny-embed``."""

    def __init__(self, folder: Path, port: int | None = None) -> None:
        self.folder = folder
        self.models: TinyModels = write_tiny_models(folder / "models")
        self.port = port or _free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}/v1"
        self.log_path = folder / "llama-server.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def config(self) -> dict[str, object]:
        m = self.models
        common = {"n_threads": 1, "n_batch": 512, "verbose": False, "seed": 42}
        return {
            "host": "127.0.0.1",
            "port": self.port,
            "models": [
                {"model": str(m.text), "model_alias": TEXT_ID, "n_ctx": 1024, "chat_format": "chatml", **common},
                {"model": str(m.text), "model_alias": VISION_ID, "n_ctx": 1024, "chat_format": "llava-1-5",
                 "clip_model_path": str(m.mmproj), **common},
                {"model": str(m.embedding), "model_alias": EMBED_ID, "n_ctx": 256, "embedding": True, **common},
            ],
        }

    def start(self, timeout: float = 60.0) -> LlamaServer:
        config_path = self.folder / "llama-server.json"
        config_path.write_text(json.dumps(self.config(), indent=2))
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--config_file", str(config_path)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"llama.cpp server exited: {self.log_path.read_text()[-2000:]}")
            try:
                if httpx.get(self.endpoint + "/models", timeout=1.0).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"llama.cpp server not ready after {timeout}s: {self.log_path.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(10)
        except (subprocess.TimeoutExpired, ProcessLookupError):
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(5)

    def __enter__(self) -> LlamaServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
