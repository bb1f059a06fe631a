"""Registry load and write at 10,000 entries, against ``json.loads`` of the same file in the same run.

- load: parse and validate the whole file (what a cold CLI or a server reload pays);
- write: one lock or unlock through a running server's cached registry (read-modify-write under the
  file lock, validate, serialise, fsync, rename), and through the CLI from a cold start.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import DATA, median, report, synthetic_registry


def main() -> None:
    from imageworks_loader.services import Loader
    from imageworks_loader.store import parse_registry

    path = synthetic_registry(DATA / "reg10k" / "model_registry.json", 10_000)
    data = path.read_bytes()
    base = median([_t(lambda: json.loads(data)) for _ in range(7)])
    load = median([_t(lambda: parse_registry(data, path)) for _ in range(7)])
    report(f"load 10,000 entries ({len(data) / 1e6:.1f} MB): {load * 1000:.0f} ms "
           f"= {load / base:.1f} x json.loads alone ({base * 1000:.0f} ms), same run")

    loader = Loader(path)
    loader.registry()
    name = "model-00042_(Q4_K_M)"
    writes = [_t(lambda i=i: (loader.lock if i % 2 == 0 else loader.unlock)(name)) for i in range(9)]
    write = median(writes[1:])
    report(f"write (lock/unlock) on 10,000 entries, warm process: {write * 1000:.0f} ms "
           f"(validate one entry, serialise, fsync, rename) = {write / base:.1f} x json.loads alone, same run")
    cli = [sys.executable, "-m", "imageworks_loader", "--registry", str(path)]
    cold = median([_t(lambda i=i: subprocess.run(cli + ["lock" if i % 2 == 0 else "unlock", name], check=True,
                                                 stdout=subprocess.DEVNULL)) for i in range(5)])
    noop = median([_t(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True)) for _ in range(5)])
    report(f"write (lock/unlock) on 10,000 entries via the CLI, cold start: {cold * 1000:.0f} ms "
           f"(python start-up alone {noop * 1000:.0f} ms), same run")


def _t(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


if __name__ == "__main__":
    main()
