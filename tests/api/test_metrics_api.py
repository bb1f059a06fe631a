"""Metrics, bench, Prometheus and backend readiness over HTTP."""

import json
import time

import pytest
from fastapi.testclient import TestClient

from imageworks_loader.api.app import create_app
from imageworks_loader.settings import Settings

from ..backend.reference import Behaviour, ReferenceBackend
from ..conftest import ServerProcess, backend_registry
from ..helpers import entry, write_registry


@pytest.fixture
def ref_api(tmp_path):
    with ReferenceBackend(Behaviour(first_token_s=0.02, token_interval_s=0.001)) as ref:
        path = backend_registry(tmp_path / "r.json", ref.endpoint, {"m": "ref-model", "other": "not-served"})
        settings = Settings(registry_path=path, image_roots=(tmp_path,), metrics_window=3, check_timeout=1.0)
        with TestClient(create_app(settings), raise_server_exceptions=False) as client:
            yield client, path, ref


def test_push_samples_and_rolling_window(ref_api):
    client, _, _ = ref_api
    assert client.get("/v1/models/m/metrics").json()["rolling_samples"] == 0
    for ttft in (100, 200, 300, 400):
        r = client.post("/v1/models/m/metrics", json={"ttft_ms": ttft, "tokens_generated": 11, "duration_ms": ttft + 1000})
        assert r.status_code == 200, r.text
    body = client.get("/v1/models/m/metrics").json()
    assert body["rolling_samples"] == 3 and body["window"] == 3
    assert body["ttft_ms_avg"] == 300 and body["ttft_ms_p50"] == 300 and body["ttft_ms_p95"] == 390
    assert body["throughput_toks_per_s_avg"] == 10
    assert body["last_sample"]["ttft_ms"] == 400


@pytest.mark.parametrize("sample", [
    {"ttft_ms": -1, "tokens_generated": 1, "duration_ms": 10},
    {"ttft_ms": 20, "tokens_generated": 1, "duration_ms": 10},
    {"ttft_ms": 1, "duration_ms": 10},
    {"ttft_ms": 1, "tokens_generated": -3, "duration_ms": 10},
    {"ttft_ms": 1, "tokens_generated": 1.5, "duration_ms": 10},
    {"ttft_ms": "fast", "tokens_generated": 1, "duration_ms": 10},
    {"ttft_ms": 1, "tokens_generated": 1, "duration_ms": 10, "extra": True},
    {},
])
def test_nonsense_samples_are_422(ref_api, sample):
    client, _, _ = ref_api
    r = client.post("/v1/models/m/metrics", json=sample)
    assert r.status_code == 422, r.text
    assert client.get("/v1/models/m/metrics").json()["rolling_samples"] == 0


def test_unknown_model_metrics_is_404_not_an_empty_summary(ref_api):
    client, _, _ = ref_api
    assert client.get("/v1/models/ghost/metrics").status_code == 404
    assert client.post("/v1/models/ghost/metrics", json={"ttft_ms": 1, "tokens_generated": 1, "duration_ms": 2}).status_code == 404
    assert client.post("/v1/models/ghost/bench", json={}).status_code == 404


def test_bench_records_samples_and_writes_performance_once(ref_api):
    client, path, _ = ref_api
    before = path.stat().st_ino
    r = client.post("/v1/models/m/bench", json={"requests": 4, "max_tokens": 5, "concurrency": 2})
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["samples"]) == 4 and body["summary"]["rolling_samples"] == 3
    perf = json.loads(path.read_text())[0]["performance"]
    assert perf["rolling_samples"] == 3 and perf["ttft_ms_avg"] == body["summary"]["ttft_ms_avg"]
    assert path.stat().st_ino != before  # replaced once, atomically


def test_bench_against_dead_backend_is_502_and_records_nothing(ref_api):
    client, path, ref = ref_api
    before = path.read_bytes()
    ref.stop()
    r = client.post("/v1/models/m/bench", json={"requests": 2})
    assert r.status_code == 502 and r.json()["detail"]["error"] == "backend_unavailable"
    assert path.read_bytes() == before
    assert client.get("/v1/models/m/metrics").json()["rolling_samples"] == 0


def test_bench_validation(ref_api):
    client, _, _ = ref_api
    for bad in ({"requests": 0}, {"max_tokens": -1}, {"concurrency": 1000}, {"prompt": ""}):
        assert client.post("/v1/models/m/bench", json=bad).status_code == 422


def test_select_with_backend_check(ref_api):
    client, _, ref = ref_api
    assert client.post("/v1/select", json={"name": "m", "check_backend": True}).status_code == 200
    r = client.post("/v1/select", json={"name": "other", "check_backend": True})
    assert r.status_code == 424
    assert "does not serve 'not-served'" in r.json()["detail"]["message"]
    ref.stop()
    r = client.post("/v1/select", json={"name": "m", "check_backend": True})
    assert r.status_code == 424 and r.json()["detail"]["reason"] == "backend_unavailable"
    assert client.post("/v1/select", json={"name": "m"}).status_code == 200  # no check, no network


def test_list_with_check_is_concurrent_and_bounded(tmp_path):
    import socket

    hung = socket.socket()
    hung.bind(("127.0.0.1", 0))
    hung.listen(16)  # accepts connections, never answers
    hung_url = f"http://127.0.0.1:{hung.getsockname()[1]}/v1"
    with ReferenceBackend() as ref:
        path = write_registry(tmp_path / "r.json", [
            entry("up", base_url=ref.endpoint, served_model_id="ref-model"),
            entry("missing", base_url=ref.endpoint, served_model_id="nope"),
            *[entry(f"hung-{i}", base_url=hung_url) for i in range(5)],
        ])
        settings = Settings(registry_path=path, image_roots=(tmp_path,), check_timeout=1.0)
        with TestClient(create_app(settings)) as client:
            started = time.monotonic()
            rows = client.get("/v1/models", params={"check": 1}).json()
            elapsed = time.monotonic() - started
            plain = client.get("/v1/models").json()
    hung.close()
    status = {r["name"]: r["backend_ok"] for r in rows}
    assert status == {"up": True, "missing": False, **{f"hung-{i}": False for i in range(5)}}
    assert elapsed < 2.5  # one shared endpoint check, bounded by the timeout, not 5 x timeout
    assert "backend_ok" not in plain[0]


def test_prometheus_exposition(ref_api):
    client, _, _ = ref_api
    client.post("/v1/models/m/metrics", json={"ttft_ms": 100, "tokens_generated": 11, "duration_ms": 1100})
    client.post("/v1/select", json={"name": "m"})
    client.post("/v1/select", json={"name": "ghost"})
    text = client.get("/metrics").text
    assert 'imageworks_model_ttft_ms{model="m",stat="p50"} 100.0' in text
    assert 'imageworks_model_throughput_tokens_per_second{model="m"} 10.0' in text
    assert 'imageworks_operations_total{operation="select",outcome="ok"} 1.0' in text
    assert 'imageworks_operations_total{operation="select",outcome="model_not_found"} 1.0' in text


def test_samples_survive_a_server_restart(tmp_path):
    path = write_registry(tmp_path / "r.json", [entry("m")])
    srv = ServerProcess(path)
    try:
        r = srv.client().post("/v1/models/m/metrics", json={"ttft_ms": 50, "tokens_generated": 3, "duration_ms": 150})
        assert r.status_code == 200
    finally:
        srv.stop()
    srv = ServerProcess(path)
    try:
        body = srv.client().get("/v1/models/m/metrics").json()
        assert body["rolling_samples"] == 1 and body["ttft_ms_avg"] == 50
        assert "imageworks_model_ttft_ms" in srv.client().get("/metrics").text
    finally:
        srv.stop()
