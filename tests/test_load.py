"""A short, bounded run of the repo's load test (bench/load_test.py) in CI: 64 connections of mixed
list/select/metrics traffic on loopback for a few seconds, with zero errors allowed."""

import asyncio
import sys
from pathlib import Path

import pytest

from .conftest import ServerProcess

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from load_test import build_registry, run_load

pytestmark = pytest.mark.slow


def test_mixed_load_at_64_connections_has_zero_errors(tmp_path):
    server = ServerProcess(build_registry(tmp_path / "load"))
    try:
        result = asyncio.run(run_load(server.url, seconds=5, connections=64, max_requests=50_000))
    finally:
        server.stop()
    assert result.errors == {}
    assert result.requests > 500, result.line(64)
    assert set(result.by_kind) == {"list", "list_role", "select_name", "select_role", "metrics"}
