"""Rolling speed summaries per model: time to first token and tokens per second. Pure functions.

A sample is one measured request ``{ttft_ms, tokens_generated, duration_ms, at}``. Throughput counts
the tokens after the first over the time after the first::

    throughput = (tokens_generated - 1) / ((duration_ms - ttft_ms) / 1000)

Percentiles interpolate linearly between the two nearest ranks (numpy's default, "type 7"), so they
are exact and reproducible on fixed data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from .settings import DEFAULT_METRICS_WINDOW
from .state import Sample

__all__ = ["DEFAULT_WINDOW", "BenchResult", "MetricsSummary", "check_sample", "iso_utc", "percentile", "sample_dict", "summarise", "throughput"]

DEFAULT_WINDOW = DEFAULT_METRICS_WINDOW
_MAX_MS = 24 * 3600 * 1000.0  # a request longer than a day is a clock error, not a measurement
_MAX_TOKENS = 10_000_000


@dataclass(frozen=True)
class MetricsSummary:
    """The rolling summary over the last ``window`` samples (None where there is nothing to average)."""

    name: str
    window: int
    rolling_samples: int
    ttft_ms_avg: float | None
    ttft_ms_p50: float | None
    ttft_ms_p95: float | None
    throughput_toks_per_s_avg: float | None
    last_sample: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "window": self.window,
            "rolling_samples": self.rolling_samples,
            "ttft_ms_avg": _round(self.ttft_ms_avg),
            "ttft_ms_p50": _round(self.ttft_ms_p50),
            "ttft_ms_p95": _round(self.ttft_ms_p95),
            "throughput_toks_per_s_avg": _round(self.throughput_toks_per_s_avg),
            "last_sample": self.last_sample,
        }

    def performance_block(self) -> dict[str, Any]:
        """The registry's ``performance`` fields (imageworks' names plus the percentiles)."""
        d = self.to_dict()
        return {k: d[k] for k in ("rolling_samples", "ttft_ms_avg", "ttft_ms_p50", "ttft_ms_p95",
                                  "throughput_toks_per_s_avg", "last_sample")}


@dataclass(frozen=True)
class BenchResult:
    """A finished bench: the samples it measured and the rolling summary after recording them."""

    samples: tuple[Sample, ...]
    summary: MetricsSummary

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.summary.name,
            "samples": [sample_dict(s) for s in self.samples],
            "summary": self.summary.to_dict(),
        }


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 3)


def check_sample(ttft_ms: float, tokens_generated: int, duration_ms: float) -> list[str]:
    """Everything wrong with a sample (empty when it is plausible)."""
    problems = []
    for label, value in (("ttft_ms", ttft_ms), ("duration_ms", duration_ms)):
        if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
            problems.append(f"{label} must be a finite number")
        elif value < 0:
            problems.append(f"{label} must not be negative")
        elif value > _MAX_MS:
            problems.append(f"{label} is over a day; send milliseconds")
    if not isinstance(tokens_generated, int) or isinstance(tokens_generated, bool):
        problems.append("tokens_generated must be an integer")
    elif not 0 <= tokens_generated <= _MAX_TOKENS:
        problems.append(f"tokens_generated must be between 0 and {_MAX_TOKENS:,}")
    if not problems and ttft_ms > duration_ms:
        problems.append("ttft_ms must not exceed duration_ms (the first token cannot come after the end)")
    return problems


def throughput(sample: Sample) -> float | None:
    """Tokens per second after the first token; None when it is undefined (one token, no time)."""
    decode_ms = sample.duration_ms - sample.ttft_ms
    if sample.tokens_generated < 2 or decode_ms <= 0:
        return None
    return (sample.tokens_generated - 1) / (decode_ms / 1000.0)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) with linear interpolation between closest ranks."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def summarise(name: str, samples: Sequence[Sample], window: int = DEFAULT_WINDOW) -> MetricsSummary:
    """The summary of the last ``window`` samples (``samples`` are oldest first)."""
    recent = list(samples)[-window:] if window > 0 else []
    if not recent:
        return MetricsSummary(name, window, 0, None, None, None, None, None)
    ttfts = [s.ttft_ms for s in recent]
    rates = [r for r in map(throughput, recent) if r is not None]
    last = recent[-1]
    return MetricsSummary(
        name=name,
        window=window,
        rolling_samples=len(recent),
        ttft_ms_avg=sum(ttfts) / len(ttfts),
        ttft_ms_p50=percentile(ttfts, 50),
        ttft_ms_p95=percentile(ttfts, 95),
        throughput_toks_per_s_avg=sum(rates) / len(rates) if rates else None,
        last_sample=sample_dict(last),
    )


def sample_dict(sample: Sample) -> dict[str, Any]:
    """A sample as JSON: milliseconds rounded to microseconds, the time as ISO 8601 UTC."""
    return {"ttft_ms": round(sample.ttft_ms, 3), "tokens_generated": sample.tokens_generated,
            "duration_ms": round(sample.duration_ms, 3), "at": iso_utc(sample.at)}


def iso_utc(ts: float) -> str:
    from datetime import datetime

    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")
