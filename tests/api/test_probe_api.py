"""POST /v1/probe/vision against reference backends: outcomes, statuses, and that nothing is written wrongly."""

import base64
import io
import json

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from imageworks_loader.api.app import create_app
from imageworks_loader.settings import Settings

from ..backend.reference import Behaviour, ReferenceBackend
from ..conftest import backend_registry


def png_bytes(w=64, h=64, fmt="PNG"):
    out = io.BytesIO()
    Image.new("RGB", (w, h), (0, 200, 0)).save(out, fmt)
    return out.getvalue()


@pytest.fixture
def setup(tmp_path, reference):
    roots = tmp_path / "images"
    roots.mkdir()
    (roots / "green.png").write_bytes(png_bytes())
    (roots / "fake.png").write_text("just text")
    (tmp_path / "outside.png").write_bytes(png_bytes())
    (roots / "escape.png").symlink_to(tmp_path / "outside.png")
    path = backend_registry(tmp_path / "r.json", reference.endpoint, {"seeing": "ref-model"})
    settings = Settings(registry_path=path, image_roots=(roots,), probe_timeout=1.0, connect_timeout=1.0)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client, path, reference


def test_verified_end_to_end_and_recorded(setup):
    client, path, _ = setup
    r = client.post("/v1/probe/vision", json={"name": "seeing"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["outcome"] == "verified" and body["vision_ok"] is True and len(body["rounds"]) == 2
    assert json.loads(path.read_text())[0]["probes"]["vision"]["vision_ok"] is True
    listed = client.get("/v1/models").json()[0]
    assert listed["vision_ok"] is True


def test_caller_image_by_path_and_b64_is_described(setup):
    client, _, ref = setup
    r = client.post("/v1/probe/vision", json={"name": "seeing", "image_path": "green.png"})
    assert r.status_code == 200 and r.json()["description"] == "A picture dominated by green."
    assert r.json()["image"]["mime"] == "image/png"
    b64 = base64.b64encode(png_bytes(fmt="JPEG")).decode()
    r = client.post("/v1/probe/vision", json={"name": "seeing", "image_b64": b64})
    assert r.status_code == 200 and "green" in r.json()["description"]
    sent = ref.behaviour.requests[-1]["messages"][0]["content"]
    assert sent[0]["text"] == "Describe this image succinctly."
    assert sent[1]["image_url"]["url"].startswith("data:image/jpeg;base64,")


def test_constant_answer_is_not_supported_and_recorded_false(setup):
    client, path, ref = setup
    ref.behaviour.mode = "constant"
    r = client.post("/v1/probe/vision", json={"name": "seeing"})
    assert r.status_code == 200 and r.json()["outcome"] == "not_supported"
    assert json.loads(path.read_text())[0]["probes"]["vision"]["vision_ok"] is False


@pytest.mark.parametrize("body, status, code", [
    ({"name": "nobody"}, 404, "model_not_found"),
    ({"name": "seeing", "image_path": "fake.png"}, 400, "not_an_image"),
    ({"name": "seeing", "image_path": "../outside.png"}, 403, "image_path_not_allowed"),
    ({"name": "seeing", "image_path": "escape.png"}, 403, "image_path_not_allowed"),
    ({"name": "seeing", "image_path": "/etc/passwd"}, 403, "image_path_not_allowed"),
    ({"name": "seeing", "image_path": "missing.png"}, 400, "not_an_image"),
    ({"name": "seeing", "image_b64": "%%%not-base64%%%"}, 400, "not_an_image"),
    ({"name": "seeing", "image_b64": base64.b64encode(b"plain text").decode()}, 400, "not_an_image"),
    ({"name": "seeing", "image_path": "green.png", "image_b64": "AAAA"}, 422, "invalid_request"),
    ({}, 422, "invalid_request"),
    ({"name": "../../x"}, 422, "invalid_name"),
])
def test_bad_requests_get_their_status_and_write_nothing(setup, body, status, code):
    client, path, ref = setup
    before = path.read_bytes()
    r = client.post("/v1/probe/vision", json=body)
    assert r.status_code == status, r.text
    assert r.json()["detail"]["error"] == code and r.json()["detail"]["message"]
    assert path.read_bytes() == before
    assert ref.behaviour.requests == []


def test_decompression_bomb_is_413(setup):
    client, path, _ = setup
    out = io.BytesIO()
    Image.new("1", (20000, 20000)).save(out, "PNG")
    r = client.post("/v1/probe/vision", json={"name": "seeing", "image_b64": base64.b64encode(out.getvalue()).decode()})
    assert r.status_code == 413 and r.json()["detail"]["error"] == "image_too_large"


def test_oversized_body_is_413(setup):
    client, _, _ = setup
    r = client.post("/v1/probe/vision", content=b'{"name": "seeing", "image_b64": "' + b"A" * (33 << 20) + b'"}',
                    headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["detail"]["error"] == "body_too_large"


def test_empty_body_is_422(setup):
    client, _, _ = setup
    r = client.post("/v1/probe/vision", content=b"", headers={"content-type": "application/json"})
    assert r.status_code == 422


def test_dead_backend_is_502_unknown_and_never_flips_vision_ok(setup, tmp_path):
    client, path, ref = setup
    assert client.post("/v1/probe/vision", json={"name": "seeing"}).json()["vision_ok"] is True
    before = path.read_bytes()
    ref.stop()
    r = client.post("/v1/probe/vision", json={"name": "seeing"})
    assert r.status_code == 502
    d = r.json()["detail"]
    assert d["outcome"] == "unknown" and d["error"] == "backend_unavailable"
    assert path.read_bytes() == before


def test_hung_backend_is_504_within_the_timeout(tmp_path):
    import time

    with ReferenceBackend(Behaviour(mode="hang", hang_s=5)) as ref:
        path = backend_registry(tmp_path / "r.json", ref.endpoint, {"slow": "ref-model"})
        before = path.read_bytes()
        settings = Settings(registry_path=path, image_roots=(tmp_path,), probe_timeout=0.5)
        with TestClient(create_app(settings), raise_server_exceptions=False) as client:
            started = time.monotonic()
            r = client.post("/v1/probe/vision", json={"name": "slow"})
            assert time.monotonic() - started < 3
    assert r.status_code == 504 and r.json()["detail"]["outcome"] == "unknown"
    assert path.read_bytes() == before
