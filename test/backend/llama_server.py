"""The configuration of llama-cpp-python's OpenAI-compatible server for the Bun suite's tests.

Moved from the Python suite's tests/backend/llama_server.py. The process itself (free port, start in its
own process group, wait for ``/v1/models``, stop) is now managed by test/helpers/llama.ts; this script
keeps the Python-side knowledge: which models the server serves and with which llama.cpp settings.
Run with the Python of test/.venv::

    python test/backend/llama_server.py --fixtures DIR --port PORT --config FILE

It writes the tiny GGUF models into DIR when one of them is missing (test/backend/gguf_models.py), writes
the ``--config_file`` of ``python -m llama_cpp.server`` to FILE (three models on 127.0.0.1:PORT, loaded on
demand by the ``model`` field of a request), and prints the model aliases by role as one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # gguf_models beside this file, without a package

from gguf_models import TinyModels  # noqa: E402

# The aliases requests use as their "model"; /v1/models lists them in this order.
ALIASES = {"text": "tiny-text", "vision": "tiny-vision", "embedding": "tiny-embed"}


def ensure_models(folder: Path) -> TinyModels:
    """The fixtures in ``folder``, written (all three, deterministically) only when one is missing."""
    models = TinyModels(folder / "tiny-llama.gguf", folder / "tiny-mmproj.gguf", folder / "tiny-bert.gguf")
    if not all(p.is_file() for p in (models.text, models.mmproj, models.embedding)):
        from gguf_models import write_tiny_models  # imports numpy and gguf: only when needed

        models = write_tiny_models(folder)
    return models


def config(models: TinyModels, port: int) -> dict[str, object]:
    """``llama_cpp.server`` settings: a ChatML text model, the same model with the LLaVA projector, a BERT embedder."""
    # One thread each: the machine has 2 cores and the models are tiny (well under 1 ms per token).
    common = {"n_threads": 1, "n_batch": 512, "verbose": False, "seed": 42}
    return {
        "host": "127.0.0.1",
        "port": port,
        "models": [
            {"model": str(models.text), "model_alias": ALIASES["text"], "n_ctx": 1024, "chat_format": "chatml", **common},
            # llava-1-5 uses its own USER/ASSISTANT prompt: 110-180 prompt tokens per image, so n_ctx >= 512.
            {"model": str(models.text), "model_alias": ALIASES["vision"], "n_ctx": 1024, "chat_format": "llava-1-5",
             "clip_model_path": str(models.mmproj), **common},
            # embedding: true makes /v1/embeddings answer; the model's mean pooling gives one vector per input.
            {"model": str(models.embedding), "model_alias": ALIASES["embedding"], "n_ctx": 256, "embedding": True,
             **common},
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--fixtures", type=Path, required=True, help="folder of the GGUF models")
    parser.add_argument("--port", type=int, required=True, help="loopback port the server will bind")
    parser.add_argument("--config", type=Path, required=True, help="where to write the server's config file")
    args = parser.parse_args()
    models = ensure_models(args.fixtures)
    tmp = args.config.with_name(f".{args.config.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(config(models, args.port), indent=2))
    os.replace(tmp, args.config)
    print(json.dumps(ALIASES))


if __name__ == "__main__":
    main()
