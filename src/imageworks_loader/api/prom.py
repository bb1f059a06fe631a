"""Prometheus exposition for ``GET /metrics``: request counters plus per-model speed and probe outcomes.

Each app owns its own CollectorRegistry (no process-global metrics), so tests and several apps in one
process never share counters. Speed and probe figures are read from the state database at scrape time,
so they survive restarts and include samples pushed by other processes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from ..errors import LoaderError, LockViolation

__all__ = ["PromMetrics"]


class _StateCollector:
    """Per-model gauges computed from the state database on each scrape."""

    def __init__(self, loader: Any, window: int) -> None:
        self.loader = loader
        self.window = window

    def collect(self) -> Iterator[Any]:
        ttft = GaugeMetricFamily("imageworks_model_ttft_ms", "Rolling time to first token (ms)",
                                 labels=["model", "stat"])
        rate = GaugeMetricFamily("imageworks_model_throughput_tokens_per_second",
                                 "Rolling average decode throughput", labels=["model"])
        count = GaugeMetricFamily("imageworks_model_rolling_samples", "Samples in the rolling window",
                                  labels=["model"])
        probes = CounterMetricFamily("imageworks_probe", "Vision probe attempts by outcome",
                                     labels=["model", "outcome"])
        try:
            summaries = self.loader.all_metrics(window=self.window)
            probe_counts = self.loader.state.probe_outcome_counts()
        except LoaderError:
            summaries, probe_counts = [], {}
        for s in summaries:
            if not s.rolling_samples:
                continue
            count.add_metric([s.name], s.rolling_samples)
            for stat, value in (("avg", s.ttft_ms_avg), ("p50", s.ttft_ms_p50), ("p95", s.ttft_ms_p95)):
                ttft.add_metric([s.name, stat], value)
            if s.throughput_toks_per_s_avg is not None:
                rate.add_metric([s.name], s.throughput_toks_per_s_avg)
        for (model, outcome), n in sorted(probe_counts.items()):
            probes.add_metric([model, outcome], n)
        yield from (ttft, rate, count, probes)


class PromMetrics:
    """The app's metrics registry and the counters routes bump."""

    def __init__(self, loader: Any, window: int) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("imageworks_operations", "Operations by kind and outcome",
                                ["operation", "outcome"], registry=self.registry)
        self.lock_violations = Counter("imageworks_lock_violations", "Lock violations seen by select and verify",
                                       ["model"], registry=self.registry)
        self.registry.register(_StateCollector(loader, window))

    @contextlib.contextmanager
    def counted(self, operation: str) -> Iterator[None]:
        """Count one operation as ``ok`` or by its error code; lock violations also per model."""
        try:
            yield
        except LoaderError as exc:
            self.requests.labels(operation, exc.code).inc()
            if isinstance(exc, LockViolation):
                self.lock_violations.labels(exc.name).inc()
            raise
        self.requests.labels(operation, "ok").inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
