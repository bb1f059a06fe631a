"""Bench timing against a reference streaming server with known delays."""

import statistics

import pytest

from imageworks_loader.backends import BackendClient
from imageworks_loader.bench import BenchRequest, measure_once, run_bench
from imageworks_loader.errors import BackendTimeout, BackendUnavailable
from imageworks_loader.metrics import summarise, throughput

from .backend.reference import Behaviour, ReferenceBackend


def test_measured_ttft_and_throughput_are_within_25_percent_of_the_truth():
    # First token after 200 ms, then one every 10 ms: TTFT 200 ms, throughput 100 tokens/s.
    with ReferenceBackend(Behaviour(first_token_s=0.2, token_interval_s=0.01)) as ref, \
            BackendClient(ref.endpoint, timeout=10) as client:
        samples = run_bench(client, "ref-model", BenchRequest(requests=5, max_tokens=30))
    ttft = statistics.median(x.ttft_ms for x in samples)
    rate = statistics.median(throughput(x) for x in samples)
    assert ttft == pytest.approx(200, rel=0.25)
    assert rate == pytest.approx(100, rel=0.25)
    assert all(x.tokens_generated == 30 for x in samples)  # from usage


def test_tokens_are_counted_from_chunks_without_usage():
    with ReferenceBackend(Behaviour(first_token_s=0.0, token_interval_s=0.0, stream_usage=False)) as ref, \
            BackendClient(ref.endpoint, timeout=10) as client:
        sample = measure_once(client, "ref-model", prompt="hi", max_tokens=7)
    assert sample.tokens_generated == 7


def test_concurrent_bench_sends_all_requests():
    with ReferenceBackend(Behaviour(first_token_s=0.05, token_interval_s=0.0)) as ref, \
            BackendClient(ref.endpoint, timeout=10) as client:
        samples = run_bench(client, "ref-model", BenchRequest(requests=8, max_tokens=3, concurrency=4))
    assert len(samples) == 8 and len(ref.behaviour.requests) == 8
    assert summarise("m", samples).rolling_samples == 8


@pytest.mark.parametrize("behaviour, error", [
    (Behaviour(stream_break_after=2, first_token_s=0), BackendUnavailable),
    (Behaviour(mode="garbage", first_token_s=0), BackendUnavailable),
    (Behaviour(first_token_s=3.0), BackendTimeout),
])
def test_backend_dying_mid_stream_is_a_clear_error(behaviour, error):
    with ReferenceBackend(behaviour) as ref, BackendClient(ref.endpoint, timeout=0.5) as client:
        with pytest.raises(error) as err:
            measure_once(client, "ref-model", prompt="hi", max_tokens=10)
    assert ref.endpoint in str(err.value)
