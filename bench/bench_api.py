"""API latency and throughput: list at 1,000 and 10,000 entries, select of a locked 50-file model,
and list/select while the same server verifies a large model.

Baseline, same run, same server and client: ``GET /healthz`` (the cheapest route: what uvicorn,
FastAPI and the client cost by themselves).
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from common import DATA, MiB, Server, ensure_file, pct, report, synthetic_registry


def latencies(client: httpx.Client, method: str, url: str, n: int, **kw) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        r = client.request(method, url, **kw)
        out.append((time.perf_counter() - t) * 1000)
        assert r.status_code == 200, r.text[:300]
    return out


def summary(label: str, xs: list[float], base: list[float]) -> None:
    p50, p99, b50 = pct(xs, 50), pct(xs, 99), pct(base, 50)
    rps = 1000 / (sum(xs) / len(xs))
    report(f"{label}: p50 {p50:.2f} ms, p99 {p99:.2f} ms, {rps:.0f} req/s sequential "
           f"= {p50 / b50:.1f} x GET /healthz p50 ({b50:.2f} ms), same run")


def bench_list(n_entries: int, n_requests: int) -> None:
    reg = synthetic_registry(DATA / f"reg{n_entries}" / "model_registry.json", n_entries)
    srv = Server(reg)
    try:
        with httpx.Client(base_url=srv.url, timeout=30) as c:
            latencies(c, "GET", "/v1/models", 5)  # warm the pre-serialised cache
            base = latencies(c, "GET", "/healthz", n_requests)
            xs = latencies(c, "GET", "/v1/models", n_requests)
            size = len(c.get("/v1/models").content)
        summary(f"GET /v1/models, {n_entries:,} entries ({size / 1e6:.1f} MB)", xs, base)
    finally:
        srv.stop()


def locked_model_registry(folder: Path, files: int) -> Path:
    model = folder / "model50"
    model.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        p = model / f"part-{i:03d}.bin"
        if not p.exists():
            p.write_bytes(bytes([i % 256]) * 4096)
    import json

    reg = folder / "model_registry.json"
    entries = [
        {"name": "locked50", "backend": "vllm", "backend_config": {"model_path": str(model)},
         "capabilities": {"text": True, "vision": True}},
        {"name": "big", "backend": "vllm", "backend_config": {"model_path": str(DATA / "m4")}},
    ] + [{"name": f"filler-{i}", "backend": "ollama"} for i in range(998)]
    reg.write_text(json.dumps(entries, indent=2))
    return reg


def bench_select_and_busy(n_requests: int) -> None:
    from imageworks_loader.services import Loader

    for i in range(4):
        ensure_file(DATA / "m4" / f"shard{i + 1}", 512 * MiB)
    reg = locked_model_registry(DATA / "select", 50)
    for stale in reg.parent.glob("model_registry.state.sqlite*"):
        stale.unlink()
    Loader(reg).lock("locked50", set_expected=True)
    srv = Server(reg)
    try:
        with httpx.Client(base_url=srv.url, timeout=60) as c:
            body = {"name": "locked50", "require_capabilities": ["vision"]}
            latencies(c, "POST", "/v1/select", 20, json=body)
            base = latencies(c, "GET", "/healthz", n_requests)
            xs = latencies(c, "POST", "/v1/select", n_requests, json=body)
            summary("POST /v1/select, locked 50-file model (stat fingerprints)", xs, base)

            # Now verify 2 GiB in the same server, and measure list/select while it hashes.
            done = threading.Event()

            def verify() -> None:
                with httpx.Client(base_url=srv.url, timeout=300) as v:
                    while not done.is_set():
                        assert v.post("/v1/verify", json={"name": "big"}).status_code == 200

            t = threading.Thread(target=verify)
            t.start()
            time.sleep(0.3)
            busy_select, busy_list = [], []
            end = time.monotonic() + 4
            while time.monotonic() < end:
                busy_select += latencies(c, "POST", "/v1/select", 10, json=body)
                busy_list += latencies(c, "GET", "/v1/models", 10)
            done.set()
            t.join()
            report(f"while verifying 2 GiB in the same server: select p99 {pct(busy_select, 99):.2f} ms, "
                   f"list (1,000 entries) p99 {pct(busy_list, 99):.2f} ms, p50 {pct(busy_list, 50):.2f} ms "
                   f"({len(busy_select) + len(busy_list)} requests); idle select p99 {pct(xs, 99):.2f} ms, same run")
    finally:
        srv.stop()


def main() -> None:
    bench_list(1000, 2000)
    bench_list(10_000, 200)
    bench_select_and_busy(2000)


if __name__ == "__main__":
    main()
