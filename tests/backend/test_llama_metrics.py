"""Bench and readiness checks against the real llama.cpp server."""

import json

import pytest

from imageworks_loader.bench import BenchRequest
from imageworks_loader.errors import BackendNotReady
from imageworks_loader.services import Loader

from ..conftest import backend_registry, run_cli
from .llama_server import TEXT_ID, VISION_ID, LlamaServer

pytestmark = pytest.mark.backend


def test_bench_records_plausible_samples(tmp_path, llama_server):
    path = backend_registry(tmp_path / "r.json", llama_server.endpoint, {"text": TEXT_ID})
    loader = Loader(path)
    result = loader.bench("text", BenchRequest(requests=4, max_tokens=16))
    samples, summary = result.samples, result.summary
    assert len(samples) == 4
    assert all(s.ttft_ms > 0 and s.tokens_generated > 0 and s.duration_ms >= s.ttft_ms for s in samples)
    assert summary.rolling_samples == 4
    assert summary.ttft_ms_avg == pytest.approx(sum(s.ttft_ms for s in samples) / 4)
    perf = json.loads(path.read_text())[0]["performance"]
    assert perf["rolling_samples"] == 4 and perf["ttft_ms_p95"] >= perf["ttft_ms_p50"] > 0
    assert loader.metrics("text").rolling_samples == 4


def test_bench_cli_json(tmp_path, llama_server):
    path = backend_registry(tmp_path / "r.json", llama_server.endpoint, {"text": TEXT_ID})
    r = run_cli("--registry", str(path), "bench", "text", "--requests", "3", "--max-tokens", "8", "--json")
    assert r.returncode == 0, r.stderr
    body = json.loads(r.stdout)
    assert len(body["samples"]) == 3 and body["summary"]["rolling_samples"] == 3
    r = run_cli("--registry", str(path), "metrics")
    assert r.returncode == 0 and "text" in r.stdout


def test_select_check_passes_then_424_after_the_server_stops(tmp_path):
    srv = LlamaServer(tmp_path / "llama").start()
    path = backend_registry(tmp_path / "r.json", srv.endpoint, {"vision": VISION_ID, "ghost": "not-loaded"})
    loader = Loader(path)
    assert loader.select(name="vision", check_backend=True).name == "vision"
    with pytest.raises(BackendNotReady, match="does not serve 'not-loaded'"):
        loader.select(name="ghost", check_backend=True)
    r = run_cli("--registry", str(path), "select", "vision", "--check")
    assert r.returncode == 0, r.stderr
    srv.stop()
    with pytest.raises(BackendNotReady, match="unavailable"):
        loader.select(name="vision", check_backend=True)
    r = run_cli("--registry", str(path), "select", "vision", "--check")
    assert r.returncode == 1 and "not ready" in r.stderr
