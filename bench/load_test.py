"""Load test: mixed list/select/metrics traffic at 64 concurrent connections on loopback.

Bounded in time (``--seconds``, default 60) and in requests (``--max-requests``); it stops by itself.
Starts its own server on a 1,000-entry registry with a locked 50-file model, unless ``--url`` is given.
Reports requests per second, p50/p99 latency and every error (the goal is zero).

    python bench/load_test.py --seconds 60 --connections 64
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import DATA, Server, pct


@dataclass
class Result:
    latencies_ms: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    by_kind: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def requests(self) -> int:
        return len(self.latencies_ms) + sum(self.errors.values())

    def line(self, connections: int) -> str:
        rps = self.requests / self.seconds if self.seconds else 0.0
        return (f"load: {self.requests:,} requests in {self.seconds:.0f} s at {connections} connections = "
                f"{rps:,.0f} req/s; p50 {pct(self.latencies_ms, 50):.1f} ms, p99 {pct(self.latencies_ms, 99):.1f} ms; "
                f"mix {self.by_kind}; errors {sum(self.errors.values())} {self.errors or ''}")


def build_registry(folder: Path) -> Path:
    from imageworks_loader.services import Loader

    folder.mkdir(parents=True, exist_ok=True)
    model = folder / "locked-model"
    model.mkdir(exist_ok=True)
    for i in range(50):
        (model / f"part-{i:02d}.bin").write_bytes(bytes([i]) * 2048)
    entries = [{"name": "locked", "backend": "vllm", "backend_config": {"model_path": str(model)},
                "capabilities": {"text": True, "vision": True}, "roles": ["caption"], "role_priority": {"caption": 1}}]
    entries += [{"name": f"m-{i:04d}", "backend": "ollama", "capabilities": {"text": True, "vision": i % 2 == 0},
                 "roles": ["caption"] if i % 2 == 0 else ["summary"], "role_priority": {"caption": 10 + i}}
                for i in range(999)]
    path = folder / "model_registry.json"
    path.write_text(json.dumps(entries, indent=2))
    for stale in folder.glob("model_registry.state.sqlite*"):
        stale.unlink()
    loader = Loader(path)
    loader.lock("locked", set_expected=True)
    from imageworks_loader.state import Sample

    loader.add_samples("locked", [Sample(100.0 + i, 20, 600.0 + i, time.time()) for i in range(50)])
    return path


class _Conn:
    """One keep-alive HTTP/1.1 connection over asyncio streams.

    A load generator must cost far less CPU than the server it measures; a general-purpose async
    client spends several milliseconds of CPU per request at 64 connections, this one a few tens of
    microseconds. It handles exactly what the loader sends: Content-Length bodies.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, raw: bytes) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        await self.reader.readexactly(length)
        return status

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            await self.writer.wait_closed()


def _raw_request(method: str, path: str, body: dict | None, host: str) -> bytes:
    payload = json.dumps(body).encode() if body is not None else b""
    head = f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {len(payload)}\r\n"
    if body is not None:
        head += "Content-Type: application/json\r\n"
    return head.encode() + b"\r\n" + payload


async def run_load(url: str, *, seconds: float, connections: int, max_requests: int, seed: int = 1) -> Result:
    """``connections`` workers, each on its own keep-alive connection, until the time or request budget ends."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    result = Result()
    rng = random.Random(seed)
    kinds = [
        ("list", "GET", "/v1/models", None),
        ("list_role", "GET", "/v1/models?role=caption", None),
        ("select_name", "POST", "/v1/select", {"name": "locked", "require_capabilities": ["vision"]}),
        ("select_role", "POST", "/v1/select", {"role": "caption", "require_capabilities": ["vision"]}),
        ("metrics", "GET", "/v1/models/locked/metrics", None),
    ]
    prepared = [(kind, _raw_request(method, path, body, f"{host}:{port}")) for kind, method, path, body in kinds]
    deadline = time.monotonic() + seconds
    budget = [max_requests]

    async def worker() -> None:
        conn = _Conn(host, port)
        try:
            while time.monotonic() < deadline and budget[0] > 0:
                budget[0] -= 1
                kind, raw = rng.choice(prepared)
                t = time.perf_counter()
                try:
                    status = await conn.request(raw)
                except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                    key = f"{kind} {type(exc).__name__}"
                    result.errors[key] = result.errors.get(key, 0) + 1
                    await conn.close()
                    conn = _Conn(host, port)
                    continue
                if status != 200:
                    key = f"{kind} HTTP {status}"
                    result.errors[key] = result.errors.get(key, 0) + 1
                    continue
                result.latencies_ms.append((time.perf_counter() - t) * 1000)
                result.by_kind[kind] = result.by_kind.get(kind, 0) + 1
        finally:
            await conn.close()

    started = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(connections)))
    result.seconds = time.monotonic() - started
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--max-requests", type=int, default=2_000_000)
    parser.add_argument("--url", help="an already running loader (loopback only)")
    args = parser.parse_args()
    if args.url and not args.url.startswith(("http://127.", "http://localhost", "http://[::1]")):
        parser.error("--url must be a loopback address")
    server = None
    url = args.url
    if url is None:
        server = Server(build_registry(DATA / "load"))
        url = server.url
    try:
        result = asyncio.run(run_load(url, seconds=args.seconds, connections=args.connections,
                                      max_requests=args.max_requests))
    finally:
        if server:
            server.stop()
    print(result.line(args.connections), flush=True)
    return 1 if result.errors else 0


if __name__ == "__main__":
    sys.exit(main())
