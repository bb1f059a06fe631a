"""CLI start-up: ``list --json`` on the example registry and ``--help``, against a bare Python start
(``python -c pass``) in the same run. Also checks that the heavy web stack is not imported."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import ROOT, median, report, run

REPS = 9


def main() -> None:
    exe = [sys.executable, "-m", "imageworks_loader"]
    reg = str(ROOT / "configs" / "model_registry.json")
    bare = median([run([sys.executable, "-c", "pass"]) for _ in range(REPS)])
    list_json = median([run([*exe, "--registry", reg, "list", "--json"]) for _ in range(REPS)])
    help_ = median([run([*exe, "--help"]) for _ in range(REPS)])
    report(f"CLI list --json (example registry): {list_json:.3f} s wall (target 0.25 s) "
           f"= python start-up {bare:.3f} s + {list_json - bare:.3f} s, same run")
    report(f"CLI --help: {help_:.3f} s wall (target 0.2 s) = python start-up {bare:.3f} s + {help_ - bare:.3f} s")
    code = (
        "import io, sys, contextlib\n"
        "from imageworks_loader.cli.main import app\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n"
        f"        app(['--registry', {reg!r}, 'list', '--json'])\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print(sorted(m for m in ('fastapi', 'uvicorn', 'httpx', 'PIL', 'starlette', 'rich.console') if m in sys.modules))"
    )
    heavy = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    report(f"modules imported by list --json among fastapi/uvicorn/httpx/PIL/starlette/rich.console: {heavy}")


if __name__ == "__main__":
    main()
