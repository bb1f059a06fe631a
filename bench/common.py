"""Shared helpers for the benchmarks: data sets, timing, servers, baselines. Not part of the package."""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bench" / ".data"
MiB = 1 << 20


def ensure_file(path: Path, size: int) -> Path:
    """A file of ``size`` random bytes, written once and reused across runs."""
    if path.exists() and path.stat().st_size == size:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        left = size
        block = os.urandom(16 * MiB)
        i = 0
        while left:
            n = min(left, len(block))
            # vary each block cheaply so files are not runs of one repeated block
            f.write(block[:n] if i % 2 == 0 else block[n - 1::-1][:n])
            left -= n
            i += 1
    tmp.rename(path)
    return path


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def pct(xs: list[float], q: float) -> float:
    ordered = sorted(xs)
    pos = (len(ordered) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def timed(fn: Callable[[], Any]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def run(cmd: list[str], **kw: Any) -> float:
    """Wall time of a command (output discarded); raises if it fails."""
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)
    return time.perf_counter() - t


def drop_cache(paths: list[Path]) -> None:
    """Evict files from the page cache (works without root for clean pages)."""
    for p in paths:
        fd = os.open(p, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``imageworks-loader serve`` (one uvicorn worker) in a subprocess."""

    def __init__(self, registry: Path, env: dict[str, str] | None = None) -> None:
        import httpx

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "imageworks_loader", "--registry", str(registry), "serve", "--port", str(self.port),
             "--log-level", "warning"],
            env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        for _ in range(400):
            try:
                httpx.get(self.url + "/healthz", timeout=0.5)
                return
            except httpx.TransportError:
                time.sleep(0.05)
        raise RuntimeError("server did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def synthetic_registry(path: Path, n: int) -> Path:
    """``n`` imageworks-style entries with the full synonym-heavy capability blocks imageworks writes."""
    caps_keys = ["text", "vision", "embedding", "audio", "thinking", "reasoning", "tools", "language", "chat",
                 "visual", "multimodal", "mm", "image", "vl", "speech", "tool_use", "function_calling", "cot"]
    entries = []
    for i in range(n):
        vision = i % 3 == 0
        entries.append({
            "name": f"model-{i:05d}_(Q4_K_M)",
            "display_name": f"Model {i} (Q4 K M)",
            "backend": ("vllm", "ollama", "lmdeploy", "llamacpp")[i % 4],
            "backend_config": {"port": 8000 + i % 50, "model_path": f"/srv/models/m{i}", "extra_args": ["--max-model-len", "4096"]},
            "capabilities": {k: (k in ("text", "language", "chat") or (vision and k in ("vision", "image", "vl", "visual")))
                             for k in caps_keys},
            "generation_defaults": {"temperature": 0.7, "top_p": 0.9, "top_k": 40},
            "artifacts": {"aggregate_sha256": "", "files": []},
            "version_lock": {"locked": False, "expected_aggregate_sha256": None, "last_verified": None},
            "performance": {"rolling_samples": 0, "ttft_ms_avg": None, "throughput_toks_per_s_avg": None, "last_sample": None},
            "probes": {"vision": None},
            "metadata": {"registry_layer": "curated", "producer": "bench"},
            "served_model_id": f"org/model-{i}",
            "model_aliases": [f"alias-{i}"],
            "roles": ["caption"] if vision else ["summary"],
            "role_priority": {"caption": i % 100} if vision else {},
            "deprecated": False,
            "download_size_bytes": 1234567890 + i,
        })
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(entries, indent=2) + "\n")
    return path


def report(line: str) -> None:
    print(line, flush=True)
