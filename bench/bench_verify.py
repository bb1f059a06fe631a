"""Verify throughput against baselines measured in the same run on the same files.

- 4 x 512 MiB shards, page cache warm: through the API, and through the CLI (start-up included),
  against ``openssl dgst -sha256`` and coreutils ``sha256sum``;
- one 2 GiB file through the API against the one-core hashlib limit (in-memory hashing);
- cold cache (``posix_fadvise(DONTNEED)`` first) through the API against ``cat`` on the same files;
- peak resident memory of the server while it verifies a 4 GiB model.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from common import DATA, MiB, Server, drop_cache, ensure_file, median, report, run

REPS = 3


def files_of(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() or p.is_symlink())


def setup() -> Path:
    m4 = DATA / "m4"
    for i in range(4):
        ensure_file(m4 / f"shard{i + 1}", 512 * MiB)
    ensure_file(DATA / "one" / "model.safetensors", 2048 * MiB)
    four = DATA / "m4g"  # a 4 GiB model: the four shards and the big file, by symlink
    four.mkdir(exist_ok=True)
    for src in [*files_of(m4), DATA / "one" / "model.safetensors"]:
        link = four / (src.parent.name + "-" + src.name)
        if not link.exists():
            link.symlink_to(src)
    reg = DATA / "verify" / "model_registry.json"
    reg.parent.mkdir(parents=True, exist_ok=True)
    for stale in reg.parent.glob("model_registry.state.sqlite*"):
        stale.unlink()
    reg.write_text(json.dumps([
        {"name": "m4", "backend": "vllm", "backend_config": {"model_path": str(m4)}},
        {"name": "one", "backend": "vllm", "backend_config": {"model_path": str(DATA / "one")}},
        {"name": "m4g", "backend": "vllm", "backend_config": {"model_path": str(four)}},
    ], indent=2))
    return reg


def gbps(nbytes: int, seconds: float) -> float:
    return nbytes / seconds / 1e9


def api_verify(client: httpx.Client, name: str) -> float:
    t = time.perf_counter()
    r = client.post("/v1/verify", json={"name": name})
    assert r.status_code == 200, r.text
    return time.perf_counter() - t


def hashlib_limit() -> float:
    buf = os.urandom(256 * MiB)
    best = min(_timed_hash(buf) for _ in range(3))
    return gbps(len(buf), best)


def _timed_hash(buf: bytes) -> float:
    t = time.perf_counter()
    hashlib.sha256(buf).digest()
    return time.perf_counter() - t


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    reg = setup()
    shards = files_of(DATA / "m4")
    total = sum(p.stat().st_size for p in shards)
    cli = [sys.executable, "-m", "imageworks_loader", "--registry", str(reg), "verify", "m4"]

    # Warm everything once.
    subprocess.run(["cat", *map(str, shards)], stdout=subprocess.DEVNULL, check=True)
    openssl = [run(["openssl", "dgst", "-sha256", *map(str, shards)]) for _ in range(REPS)]
    coreutils = [run(["sha256sum", *map(str, shards)]) for _ in range(2)]
    cli_times = [run(cli) for _ in range(REPS)]
    srv = Server(reg)
    try:
        with httpx.Client(base_url=srv.url, timeout=600) as c:
            api_verify(c, "m4")
            api_times = [api_verify(c, "m4") for _ in range(REPS)]
            one_size = (DATA / "one" / "model.safetensors").stat().st_size
            api_verify(c, "one")
            one_times = [api_verify(c, "one") for _ in range(REPS)]
            limit = hashlib_limit()

            cold_api, cold_cat = [], []
            for _ in range(2):
                drop_cache(shards)
                t = time.perf_counter()
                subprocess.run(["cat", *map(str, shards)], stdout=subprocess.DEVNULL, check=True)
                cold_cat.append(time.perf_counter() - t)
                drop_cache(shards)
                cold_api.append(api_verify(c, "m4"))
    finally:
        srv.stop()

    # Peak memory: a fresh server verifying a 4 GiB model (page cache warm or not does not matter).
    srv = Server(reg)
    try:
        with httpx.Client(base_url=srv.url, timeout=600) as c:
            t = api_verify(c, "m4g")
        rss = peak_rss_mb(srv.proc.pid)
    finally:
        srv.stop()
    size4 = sum(p.stat().st_size for p in files_of(DATA / "m4g"))

    o = gbps(total, median(openssl))
    report(f"verify 4x512MiB via API (warm): {gbps(total, median(api_times)):.2f} GB/s "
           f"= {gbps(total, median(api_times)) / o:.2f} x openssl dgst ({o:.2f} GB/s), same run")
    report(f"verify 4x512MiB via CLI, start-up included (warm): {gbps(total, median(cli_times)):.2f} GB/s "
           f"= {gbps(total, median(cli_times)) / o:.2f} x openssl dgst ({o:.2f} GB/s); "
           f"sha256sum {gbps(total, median(coreutils)):.2f} GB/s, same run")
    one = gbps(one_size, median(one_times))
    report(f"verify 1x2GiB via API (warm): {one:.2f} GB/s = {one / limit:.2f} x one-core hashlib limit "
           f"({limit:.2f} GB/s in memory), same run")
    cat = gbps(total, median(cold_cat))
    report(f"verify 4x512MiB via API (cold cache): {gbps(total, median(cold_api)):.2f} GB/s "
           f"= {gbps(total, median(cold_api)) / cat:.2f} x cat from the same disk ({cat:.2f} GB/s), same run")
    report(f"peak RSS of the server verifying a {size4 / (1 << 30):.0f} GiB model: {rss:.0f} MB "
           f"(limit 256 MB; {gbps(size4, t):.2f} GB/s)")


if __name__ == "__main__":
    main()
