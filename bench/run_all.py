"""Run every benchmark (``make bench``): about 2-3 minutes on 2 cores, plus about 1 minute the first
time to write the 4.5 GB of test files into bench/.data/ (reused afterwards)."""

from __future__ import annotations

import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent


def main() -> int:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    import os

    print(f"# machine: {os.cpu_count()} cores, {cpu}; Python {platform.python_version()}", flush=True)
    started = time.monotonic()
    for script in ("bench_cli.py", "bench_registry.py", "bench_api.py", "bench_verify.py"):
        print(f"\n## {script}", flush=True)
        result = subprocess.run([sys.executable, str(HERE / script)])
        if result.returncode:
            return result.returncode
    print(f"\n# all benchmarks: {time.monotonic() - started:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
