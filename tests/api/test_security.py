"""Auth, exposure and hostile input: tokens, binding, size limits, deep JSON, names, leaks."""

import json
import time

import httpx
import pytest
from fastapi.testclient import TestClient

from imageworks_loader.api.app import create_app
from imageworks_loader.settings import Settings

from ..conftest import ServerProcess, cli_env, run_cli

TOKEN = "s3cret-token-value-42"


@pytest.fixture
def secured(registry_path, tmp_path):
    app = create_app(Settings(registry_path=registry_path, image_roots=(tmp_path,), api_token=TOKEN))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


PROTECTED = [("GET", "/v1/models"), ("POST", "/v1/select"), ("POST", "/v1/verify"), ("POST", "/v1/probe/vision"),
             ("GET", "/v1/models/tiny/metrics"), ("POST", "/v1/models/tiny/metrics"), ("POST", "/v1/models/tiny/bench"),
             ("GET", "/metrics"), ("GET", "/docs"), ("GET", "/openapi.json"), ("GET", "/nothing-here")]


@pytest.mark.parametrize("method, path", PROTECTED)
@pytest.mark.parametrize("auth", [None, "Bearer wrong", "Basic " + TOKEN, "Bearer " + TOKEN + "x", "Bearer"])
def test_every_endpoint_but_healthz_needs_the_token(secured, method, path, auth):
    headers = {"Authorization": auth} if auth else {}
    r = secured.request(method, path, headers=headers, json={"name": "tiny"})
    assert r.status_code == 401
    assert r.json()["detail"]["error"] == "unauthorized"
    assert r.headers["www-authenticate"] == "Bearer"


def test_right_token_passes_and_healthz_is_open(secured):
    assert secured.get("/healthz").status_code == 200
    ok = {"Authorization": f"Bearer {TOKEN}"}
    assert secured.get("/v1/models", headers=ok).status_code == 200
    assert secured.post("/v1/select", headers=ok, json={"name": "tiny"}).status_code == 200
    assert secured.get("/metrics", headers=ok).status_code == 200


def test_token_comparison_is_constant_time():
    import inspect

    from imageworks_loader.api import guard

    assert "hmac.compare_digest" in inspect.getsource(guard.Guard._authorised)


def test_rejections_are_logged_without_the_token(registry_path):
    srv = ServerProcess(registry_path, env=cli_env(IMAGEWORKS_API_TOKEN=TOKEN))
    try:
        with srv.client() as c:
            assert c.get("/v1/models", headers={"Authorization": "Bearer guess-wrong-123"}).status_code == 401
            assert c.get("/v1/models").status_code == 401
            assert c.get("/v1/models", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    finally:
        log = srv.stop()
    assert "rejected GET /v1/models" in log
    assert TOKEN not in log and "guess-wrong-123" not in log


def test_public_bind_needs_a_token_or_an_explicit_flag(registry_path):
    r = run_cli("--registry", str(registry_path), "serve", "--host", "0.0.0.0")
    assert r.returncode == 2 and "refusing to bind 0.0.0.0" in r.stderr
    r = run_cli("--registry", str(registry_path), "serve", "--host", "::")
    assert r.returncode == 2
    with_token = ServerProcess(registry_path, env=cli_env(IMAGEWORKS_API_TOKEN=TOKEN), args=("--host", "0.0.0.0"))
    try:
        assert httpx.get(with_token.url + "/v1/models").status_code == 401
    finally:
        with_token.stop()
    flagged = ServerProcess(registry_path, args=("--host", "0.0.0.0", "--allow-unauthenticated"))
    try:
        assert httpx.get(flagged.url + "/v1/models").status_code == 200
    finally:
        flagged.stop()


def test_default_bind_is_loopback():
    import inspect

    from imageworks_loader.cli.main import serve

    assert inspect.signature(serve).parameters["host"].default == "127.0.0.1"


def test_deeply_nested_json_is_refused_cleanly(api):
    for body in (b"[" * 100_000 + b"]" * 100_000, b'{"name": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"):
        started = time.monotonic()
        r = api.post("/v1/select", content=body, headers={"content-type": "application/json"})
        assert r.status_code == 422, r.text[:200]
        assert time.monotonic() - started < 5


def test_huge_flat_json_within_the_limit_is_refused_without_trouble(api):
    body = b'{"name": "tiny", "require_capabilities": [' + b'"vision",' * 3_000_000 + b'"text"]}'
    assert len(body) < 32 << 20
    r = api.post("/v1/select", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["detail"]["error"] == "invalid_request"


def test_oversized_bodies_are_413_declared_or_chunked(api):
    big = b"x" * ((32 << 20) + 1)
    r = api.post("/v1/select", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413

    def chunks():
        for _ in range(40):
            yield b"x" * (1 << 20)

    r = api.post("/v1/select", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["detail"]["error"] == "body_too_large"


@pytest.mark.parametrize("name", ["a/b", "..", "../../etc/passwd", "a\\b", "x" * 300, "a\u0000b", "tab\tname",
                                  "\u202ename", ".hidden", "a/b/c"])
def test_hostile_names_are_refused_everywhere(api, name):
    for method, path, body in (("POST", "/v1/select", {"name": name}), ("POST", "/v1/verify", {"name": name}),
                               ("POST", "/v1/probe/vision", {"name": name})):
        r = api.request(method, path, json=body)
        assert r.status_code in (404, 422), (path, r.status_code, r.text)
        assert r.json()["detail"]["message"]
    from urllib.parse import quote

    r = api.get(f"/v1/models/{quote(name, safe='')}/metrics")
    assert r.status_code in (404, 422), r.text


def test_no_server_paths_or_traces_in_responses(api, registry_path, tmp_path):
    r = api.post("/v1/verify", json={"name": "vision-a"})  # no model_path: clear 422
    assert r.status_code == 422
    raw = json.loads(registry_path.read_text())
    raw[0]["backend_config"]["model_path"] = str(tmp_path / "gone" / "weights")
    registry_path.write_text(json.dumps(raw))
    r = api.post("/v1/verify", json={"name": "tiny"})
    assert r.status_code == 422
    assert str(tmp_path) not in r.text and "<server path>" in r.text
    registry_path.write_text("[{")
    r = api.post("/v1/verify", json={"name": "tiny"})
    assert r.status_code == 503 and str(registry_path.parent) not in r.text
    assert "Traceback" not in r.text and "model_registry.json" in r.text
