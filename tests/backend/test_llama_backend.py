"""Against the real llama.cpp server of the test suite (tiny random-weight models)."""

import base64
import io
import json
import random

import httpx
import pytest
from PIL import Image, ImageDraw

from imageworks_loader.probe import Outcome
from imageworks_loader.services import Loader

from ..conftest import backend_registry
from .llama_server import EMBED_ID, TEXT_ID, VISION_ID, LlamaServer

pytestmark = pytest.mark.backend


def shape_png(colour):
    img = Image.new("RGB", (256, 256), "white")
    ImageDraw.Draw(img).ellipse((20, 20, 236, 236), fill=colour)
    out = io.BytesIO()
    img.save(out, "PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


def ask(endpoint, model, content, max_tokens=8):
    r = httpx.post(endpoint + "/chat/completions", timeout=60, json={
        "model": model, "temperature": 0, "max_tokens": max_tokens,
        "messages": [{"role": "user", "content": content}]})
    assert r.status_code == 200, r.text
    return r.json()


def test_server_serves_text_vision_and_embeddings(llama_server):
    ids = [m["id"] for m in httpx.get(llama_server.endpoint + "/models").json()["data"]]
    assert ids == [TEXT_ID, VISION_ID, EMBED_ID]
    assert ask(llama_server.endpoint, TEXT_ID, "Hello")["usage"]["completion_tokens"] > 0
    r = httpx.post(llama_server.endpoint + "/embeddings", json={"model": EMBED_ID, "input": "a red shape"}, timeout=60)
    assert len(r.json()["data"][0]["embedding"]) == 64


def test_fixtures_are_tiny_and_deterministic(tmp_path, llama_server):
    from .gguf_models import write_tiny_models

    again = write_tiny_models(tmp_path)
    sizes = [p.stat().st_size for p in (again.text, again.mmproj, again.embedding)]
    assert sum(sizes) < 1_000_000
    assert again.text.read_bytes() == llama_server.models.text.read_bytes()


def test_the_image_really_reaches_the_model(llama_server):
    """Red and blue images give different answers; the same image gives the same answer."""
    def answer(colour):
        content = [{"type": "text", "text": "What colour is the shape?"},
                   {"type": "image_url", "image_url": {"url": shape_png(colour)}}]
        out = ask(llama_server.endpoint, VISION_ID, content)
        return out["choices"][0]["message"]["content"], out["usage"]["prompt_tokens"]

    red, red_tokens = answer("red")
    blue, _ = answer("blue")
    assert red != blue
    assert answer("red")[0] == red
    assert red_tokens > 100  # the 16 image tokens plus the llava prompt


def test_probe_of_vision_model_is_conclusive_and_recorded(tmp_path, llama_server):
    path = backend_registry(tmp_path / "r.json", llama_server.endpoint, {"vision": VISION_ID, "text": TEXT_ID})
    loader = Loader(path)
    result = loader.probe_vision("vision", rng=random.Random(3), timeout=60)
    assert result.outcome.conclusive
    assert [len(r.answer) > 0 for r in result.rounds] == [True] * len(result.rounds)
    # The outcome is computed from the model's own answers: rerunning gives the same verdict.
    again = loader.probe_vision("vision", rng=random.Random(3), timeout=60)
    assert [r.answer for r in again.rounds] == [r.answer for r in result.rounds]
    stored = json.loads(path.read_text())[0]["probes"]["vision"]
    assert stored["vision_ok"] is result.vision_ok
    assert stored["probe_version"] == result.probe_version and stored["latency_ms"] > 0
    assert stored["notes"].startswith(f"round 1: {result.rounds[0].shape} in {result.rounds[0].colour}, answered ")
    assert len(loader.state.probe_history("vision")) == 2


def test_probe_of_text_only_model_is_not_supported(tmp_path, llama_server):
    path = backend_registry(tmp_path / "r.json", llama_server.endpoint, {"text": TEXT_ID})
    result = Loader(path).probe_vision("text", rng=random.Random(5), timeout=60)
    assert result.outcome is Outcome.NOT_SUPPORTED
    assert json.loads(path.read_text())[0]["probes"]["vision"]["vision_ok"] is False


def test_probe_with_caller_image_returns_a_description(tmp_path, llama_server):
    path = backend_registry(tmp_path / "r.json", llama_server.endpoint, {"vision": VISION_ID})
    from imageworks_loader.images import prepare_image

    img = io.BytesIO()
    Image.new("RGB", (2000, 1000), "green").save(img, "JPEG")
    prepared = prepare_image(img.getvalue(), "photo.jpg")
    result = Loader(path).probe_vision("vision", image=prepared, rng=random.Random(1), timeout=60)
    assert result.description and result.image["resized"] is True


def test_probe_after_the_server_stops_is_unknown_and_changes_nothing(tmp_path):
    srv = LlamaServer(tmp_path / "llama").start()
    path = backend_registry(tmp_path / "r.json", srv.endpoint, {"vision": VISION_ID})
    loader = Loader(path)
    first = loader.probe_vision("vision", rng=random.Random(2), timeout=60)
    assert first.outcome.conclusive
    srv.stop()
    before = path.read_bytes()
    result = loader.probe_vision("vision", rng=random.Random(2), timeout=60)
    assert result.outcome is Outcome.UNKNOWN and result.error_code == "backend_unavailable"
    assert path.read_bytes() == before
    assert [p.outcome for p in loader.state.probe_history("vision")] == ["unknown", first.outcome.value]


def test_llama_server_leaves_no_process_behind(tmp_path):
    import os

    srv = LlamaServer(tmp_path / "llama").start()
    pid = srv.proc.pid
    srv.stop()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
