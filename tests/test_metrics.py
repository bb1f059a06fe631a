import pytest

from imageworks_loader.metrics import check_sample, percentile, summarise, throughput
from imageworks_loader.state import Sample, StateDB


def s(ttft, tokens, duration, at=0.0):
    return Sample(ttft, tokens, duration, at)


@pytest.mark.parametrize("values, q, expected", [
    ([10], 50, 10), ([10], 95, 10),
    ([1, 2, 3, 4], 50, 2.5), ([1, 2, 3, 4], 95, 3.85), ([1, 2, 3, 4], 0, 1), ([1, 2, 3, 4], 100, 4),
    ([5, 1, 4, 2, 3], 50, 3), (list(range(1, 101)), 95, 95.05), ([100, 200], 95, 195),
])
def test_percentile_is_exact_linear_interpolation(values, q, expected):
    assert percentile(values, q) == pytest.approx(expected, abs=1e-12)


def test_percentile_matches_numpy_default():
    import numpy as np

    data = [3.7, 1.2, 9.9, 4.4, 4.4, 0.1, 7.3, 2.2, 8.8, 5.0, 6.1]
    for q in (0, 5, 50, 95, 99, 100):
        assert percentile(data, q) == pytest.approx(float(np.percentile(data, q)), abs=1e-12)


def test_throughput_formula():
    assert throughput(s(200, 11, 1200)) == pytest.approx(10.0)  # 10 tokens after the first in 1 s
    assert throughput(s(200, 1, 1200)) is None
    assert throughput(s(200, 5, 200)) is None


def test_summary_over_fixed_data():
    samples = [s(100, 11, 1100, 1), s(300, 21, 2300, 2), s(200, 6, 700, 3)]
    m = summarise("m", samples, window=50)
    assert m.rolling_samples == 3
    assert m.ttft_ms_avg == pytest.approx(200)
    assert m.ttft_ms_p50 == pytest.approx(200)
    assert m.ttft_ms_p95 == pytest.approx(290)
    assert m.throughput_toks_per_s_avg == pytest.approx((10 + 10 + 10) / 3)
    assert m.last_sample["ttft_ms"] == 200 and m.last_sample["at"].startswith("1970-01-01T00:00:03")


def test_window_keeps_only_the_newest():
    samples = [s(float(i), 2, float(i) + 10, i) for i in range(1, 101)]
    m = summarise("m", samples, window=50)
    assert m.rolling_samples == 50 and m.ttft_ms_avg == pytest.approx(sum(range(51, 101)) / 50)
    assert summarise("m", [], window=50).ttft_ms_avg is None


def test_state_db_window_drops_oldest_and_survives_reopen(tmp_path):
    db = StateDB(tmp_path / "state.sqlite")
    db.add_samples("m", [s(float(i), 2, 100.0, i) for i in range(60)], "bench")
    again = StateDB(tmp_path / "state.sqlite")
    recent = again.recent_samples("m", 50)
    assert [x.ttft_ms for x in recent] == [float(i) for i in range(10, 60)]


@pytest.mark.parametrize("ttft, tokens, duration, problem", [
    (-1, 5, 10, "ttft_ms must not be negative"),
    (5, -1, 10, "tokens_generated must be between"),
    (20, 5, 10, "must not exceed duration_ms"),
    (float("nan"), 5, 10, "finite"),
    (1, 5, float("inf"), "finite"),
    (1, 2.5, 10, "integer"),
    (1, 5, 1e12, "over a day"),
])
def test_check_sample_names_the_problem(ttft, tokens, duration, problem):
    assert any(problem in p for p in check_sample(ttft, tokens, duration))


def test_plausible_sample_passes():
    assert check_sample(0, 0, 0.5) == [] and check_sample(12.5, 100, 900) == []
