"""The real thing: ``imageworks-loader serve`` in a subprocess, driven over loopback HTTP."""

import json

from ..conftest import ServerProcess


def test_served_api_lists_selects_verifies(server, registry_path, model_dir):
    with server.client() as c:
        assert c.get("/healthz").json()["status"] == "ok"
        assert [m["name"] for m in c.get("/v1/models").json()][:2] == ["old", "tiny"]
        r = c.post("/v1/verify", json={"name": "tiny"})
        assert r.status_code == 200, r.text
        aggregate = r.json()["aggregate_sha256"]
        sel = c.post("/v1/select", json={"name": "tiny-alias"}).json()
        assert sel["name"] == "tiny" and sel["endpoint"] == "http://localhost:8080/v1"
        assert c.post("/v1/select", json={"name": "missing"}).status_code == 404
        r = c.post("/v1/select", content=b"{", headers={"content-type": "application/json"})
        assert r.status_code == 422
    stored = json.loads(registry_path.read_text())[0]
    assert stored["artifacts"]["aggregate_sha256"] == aggregate


def test_server_sees_cli_writes_and_hand_edits(server, registry_path):
    from ..conftest import run_cli

    with server.client() as c:
        assert c.get("/v1/models").json()[1]["locked"] is False
        r = run_cli("--registry", str(registry_path), "lock", "tiny")
        assert r.returncode == 0, r.stderr
        assert c.get("/v1/models").json()[1]["locked"] is True
        raw = json.loads(registry_path.read_text())
        raw.append({"name": "hand-added", "backend": "ollama"})
        registry_path.write_text(json.dumps(raw, indent=2))
        assert "hand-added" in [m["name"] for m in c.get("/v1/models").json()]


def test_serve_refuses_a_broken_registry_at_start(tmp_path):
    import subprocess
    import sys

    bad = tmp_path / "r.json"
    bad.write_text("[")
    r = subprocess.run([sys.executable, "-m", "imageworks_loader", "--registry", str(bad), "serve", "--port", "0"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert "malformed JSON at line 1" in r.stderr and "Traceback" not in r.stderr


def test_serve_refuses_public_bind_without_token(registry_path):
    from ..conftest import run_cli

    r = run_cli("--registry", str(registry_path), "serve", "--host", "0.0.0.0")
    assert r.returncode == 2
    assert "IMAGEWORKS_API_TOKEN" in r.stderr and "--allow-unauthenticated" in r.stderr


def test_server_process_fixture_is_reusable(registry_path):
    srv = ServerProcess(registry_path)
    try:
        assert srv.client().get("/healthz").status_code == 200
    finally:
        srv.stop()
    assert srv.proc.returncode is not None
