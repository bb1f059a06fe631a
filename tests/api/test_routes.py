"""Status codes and error bodies of the API, in-process (fast tables); see test_server.py for the real server."""

import json

import pytest


def detail(r):
    body = r.json()
    assert set(body) == {"detail"}, body
    assert {"error", "message"} <= set(body["detail"]), body
    return body["detail"]


def test_list_models_sorted_with_canonical_capabilities(api):
    r = api.get("/v1/models")
    assert r.status_code == 200
    rows = r.json()
    assert [m["name"] for m in rows] == ["old", "tiny", "vision-a", "vision-b"]
    assert set(rows[0]) == {"name", "backend", "capabilities", "locked", "vision_ok", "display_name", "deprecated", "roles"}
    assert rows[3]["capabilities"] == {"text": True, "vision": True, "audio": False, "embedding": False,
                                       "tools": False, "thinking": False}
    assert [m["name"] for m in api.get("/v1/models", params={"role": "caption"}).json()] == ["old", "vision-a", "vision-b"]


def test_select_by_name_and_role(api):
    r = api.post("/v1/select", json={"name": "vision-b", "require_capabilities": ["image"]})
    assert r.status_code == 200, r.text
    assert r.json()["endpoint"] == "http://gpu-box:11434/v1"
    assert r.json()["internal_model_id"] == "vision-b:7b"
    r = api.post("/v1/select", json={"role": "caption", "require_capabilities": ["vision"]})
    assert r.json()["name"] == "vision-a"


@pytest.mark.parametrize("body, status, code", [
    ({"name": "nope"}, 404, "model_not_found"),
    ({"name": "tiny", "require_capabilities": ["vision", "audio"]}, 409, "missing_capabilities"),
    ({"name": "tiny", "require_capabilities": ["telepathy"]}, 422, "unknown_capability"),
    ({"role": "nobody"}, 404, "no_model_for_role"),
    ({"name": ""}, 422, "invalid_request"),
    ({"name": "../../etc/passwd"}, 422, "invalid_name"),
    ({"name": "a\u0000b"}, 422, "invalid_name"),
    ({"name": 5}, 422, "invalid_request"),
    ({"name": ["tiny"]}, 422, "invalid_request"),
    ({}, 422, "invalid_request"),
    ({"name": "tiny", "role": "caption"}, 422, "invalid_request"),
    ({"name": "tiny", "surprise": 1}, 422, "invalid_request"),
    ({"name": "x" * 10_000}, 422, "invalid_request"),
    ([], 422, "invalid_request"),
])
def test_select_errors(api, body, status, code):
    r = api.post("/v1/select", json=body)
    assert r.status_code == status, r.text
    d = detail(r)
    assert d["error"] == code
    assert d["message"]


def test_missing_capabilities_names_all_of_them(api):
    d = detail(api.post("/v1/select", json={"name": "tiny", "require_capabilities": ["vision", "audio"]}))
    assert d["missing"] == ["audio", "vision"]


def test_unknown_model_suggests(api):
    d = detail(api.post("/v1/select", json={"name": "tiyn"}))
    assert d["suggestions"] == ["tiny"]


@pytest.mark.parametrize("raw", [b"{", b"not json", b"", b'{"name": "tiny",}', b"\xff\xfe"])
def test_malformed_bodies_are_422_never_500(api, raw):
    r = api.post("/v1/select", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert detail(r)["error"] == "invalid_request"


def test_verify_lock_flow_over_the_api(api, loader, model_dir):
    r = api.post("/v1/verify", json={"name": "tiny"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "ok" and len(body["aggregate_sha256"]) == 64
    loader.lock("tiny")
    (model_dir / "config.json").write_text("drift")
    r = api.post("/v1/select", json={"name": "tiny"})
    assert r.status_code == 409 and detail(r)["changed"] == ["config.json"]
    r = api.post("/v1/verify", json={"name": "tiny"})
    assert r.status_code == 409
    d = detail(r)
    assert d["error"] == "lock_violation" and d["changed"] == ["config.json"]
    assert d["expected_aggregate_sha256"] == body["aggregate_sha256"]


def test_verify_errors(api):
    assert api.post("/v1/verify", json={"name": "nope"}).status_code == 404
    r = api.post("/v1/verify", json={"name": "vision-a"})
    assert r.status_code == 422 and detail(r)["error"] == "artifacts_missing"
    assert api.post("/v1/verify", json={"name": "../x"}).status_code == 422


def test_unknown_endpoint_and_method(api):
    r = api.get("/v1/nothing")
    assert r.status_code == 404 and detail(r)["error"] == "not_found"
    r = api.get("/v1/select")
    assert r.status_code == 405 and detail(r)["error"] == "method_not_allowed"


def test_healthz_and_hand_edits_are_seen(api, registry_path):
    assert api.get("/healthz").json() == {"status": "ok", "models": 4, "reason": None}
    raw = json.loads(registry_path.read_text())
    registry_path.write_text(json.dumps(raw[:2]))
    assert [m["name"] for m in api.get("/v1/models").json()] == ["tiny", "vision-a"]


def test_corrupt_registry_keeps_serving_last_good_copy(api, registry_path):
    api.get("/v1/models")
    good = registry_path.read_text()
    registry_path.write_text("[{oops")
    h = api.get("/healthz").json()
    assert h["status"] == "degraded" and "line 1" in h["reason"]
    assert len(api.get("/v1/models").json()) == 4
    r = api.post("/v1/verify", json={"name": "tiny"})
    assert r.status_code == 503 and detail(r)["error"] == "registry_invalid"
    assert registry_path.read_text() == "[{oops"
    registry_path.write_text(good)
    assert api.get("/healthz").json()["status"] == "ok"


def test_no_server_paths_in_error_messages(api, registry_path):
    registry_path.write_text("[{oops")
    r = api.post("/v1/verify", json={"name": "tiny"})
    assert str(registry_path.parent) not in r.text
