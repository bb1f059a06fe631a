"""``make demo``: the tiny llama.cpp backend and the loader together, end to end, in under a minute.

Generates the tiny GGUF models into ``.demo/``, starts llama.cpp's server on them, writes a demo
registry that points at it, starts ``imageworks-loader serve``, then runs the CLI and the API the way a
user would: list, select by role, verify and lock, probe-vision, bench and metrics. With ``--keep`` both
servers stay up until Ctrl-C so you can try the API at the printed URL.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import httpx

from .llama_server import EMBED_ID, TEXT_ID, VISION_ID, LlamaServer


def demo_registry(path: Path, server: LlamaServer) -> Path:
    vision_dir = path.parent / "vision-model"
    vision_dir.mkdir(exist_ok=True)
    for src in (server.models.text, server.models.mmproj):
        link = vision_dir / src.name
        if not link.exists():
            link.symlink_to(src)
    common = {"backend": "llamacpp", "backend_config": {"base_url": server.endpoint}}
    entries = [
        {"name": "tiny-text", **common, "served_model_id": TEXT_ID,
         "backend_config": {"base_url": server.endpoint, "model_path": str(server.models.text)},
         "capabilities": {"text": True, "tools": False}, "roles": ["summary"], "role_priority": {"summary": 1}},
        {"name": "tiny-vision", **common, "served_model_id": VISION_ID,
         "backend_config": {"base_url": server.endpoint, "model_path": str(vision_dir)},
         "capabilities": {"text": True, "vision": True}, "roles": ["caption"], "role_priority": {"caption": 1}},
        {"name": "tiny-embed", **common, "served_model_id": EMBED_ID,
         "backend_config": {"base_url": server.endpoint, "model_path": str(server.models.embedding)},
         "capabilities": {"text": False, "embedding": True}, "roles": ["embedding"]},
    ]
    path.write_text(json.dumps(entries, indent=2) + "\n")
    return path


def run(registry: Path, *args: str) -> None:
    cmd = [sys.executable, "-m", "imageworks_loader", "--registry", str(registry), *args]
    print(f"\n$ imageworks-loader {shlex.join(args)}", flush=True)
    result = subprocess.run(cmd, text=True, capture_output=True)
    sys.stdout.write(result.stdout)
    sys.stdout.write(result.stderr)
    print(f"(exit {result.returncode})", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keep", action="store_true", help="keep both servers running until Ctrl-C")
    parser.add_argument("--port", type=int, default=8765, help="loader API port")
    parser.add_argument("--dir", type=Path, default=Path(".demo"))
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    for stale in args.dir.glob("model_registry.*"):
        stale.unlink()

    print("Generating tiny GGUF models and starting llama.cpp's server ...", flush=True)
    with LlamaServer(args.dir.resolve()) as backend:
        print(f"model server: {backend.endpoint}  (serves {TEXT_ID}, {VISION_ID}, {EMBED_ID})")
        registry = demo_registry(args.dir.resolve() / "model_registry.json", backend)
        api = subprocess.Popen(
            [sys.executable, "-m", "imageworks_loader", "--registry", str(registry), "serve",
             "--port", str(args.port), "--log-level", "warning"],
        )
        try:
            url = f"http://127.0.0.1:{args.port}"
            for _ in range(200):
                try:
                    httpx.get(url + "/healthz", timeout=0.5)
                    break
                except httpx.TransportError:
                    time.sleep(0.05)
            print(f"loader API:   {url}  (docs: {url}/docs)")
            run(registry, "list")
            run(registry, "select", "--role", "caption", "--require-vision")
            run(registry, "verify", "tiny-vision")
            run(registry, "lock", "tiny-vision", "--set-expected")
            run(registry, "select", "tiny-vision", "--json")
            run(registry, "probe-vision", "tiny-vision")
            run(registry, "probe-vision", "tiny-text")
            run(registry, "bench", "tiny-text", "--requests", "5", "--max-tokens", "32")
            run(registry, "metrics")
            print("\n$ curl -s -X POST " + url + "/v1/select -d '{\"role\": \"caption\"}'")
            print(httpx.post(url + "/v1/select", json={"role": "caption"}).text)
            print("\nThe tiny models have random weights: their answers are deterministic gibberish, so the")
            print("vision probe is expected to say NOT SUPPORTED. A real vision model says verified.")
            if args.keep:
                print(f"\nServers are up: try {url}/docs . Ctrl-C to stop.", flush=True)
                while api.poll() is None:
                    time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            api.terminate()
            api.wait(10)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
