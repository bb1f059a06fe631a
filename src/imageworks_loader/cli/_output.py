"""Rendering for people (rich tables, progress on a terminal only) and for scripts (JSON)."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

import typer

__all__ = ["Out"]

_CAP_ORDER = ("text", "vision", "audio", "embedding", "tools", "thinking")


def _console(stderr: bool = False) -> Any:
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() else 200  # no folding when piped
    return Console(stderr=stderr, highlight=False, markup=False, soft_wrap=False, width=width)


class Out:
    """Where command output goes: tables on stdout, errors and progress on stderr."""

    def json(self, data: Any) -> None:
        sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")

    def emit(self, result: Any, *, as_json: bool, human: Callable[[Any], None]) -> None:
        """JSON of ``result.to_dict()`` for scripts, or the human rendering."""
        if as_json:
            self.json(result.to_dict())
        else:
            human(result)

    def error(self, message: str) -> None:
        sys.stderr.write(f"error: {message}\n")

    def usage_error(self, message: str) -> NoReturn:
        sys.stderr.write(f"usage error: {message}\n")
        raise typer.Exit(2)

    def line(self, text: str) -> None:
        # Plain lines need no rich (importing rich.console alone costs about 0.1 s).
        sys.stdout.write(text + "\n")

    # ----------------------------------------------------------------- tables

    def models_table(self, models: list[Any], *, role: str | None) -> None:
        from rich.table import Table

        if not models:
            self.line("No models" + (f" with role {role!r}." if role else " in the registry."))
            return
        table = Table(title=None, box=None, header_style="bold", pad_edge=False)
        for col in ("NAME", "BACKEND", "CAPABILITIES", "ROLES", "LOCKED", "VISION"):
            table.add_column(col, overflow="fold")
        for m in models:
            caps = ",".join(c for c in _CAP_ORDER if m.capabilities.get(c))
            vision = {True: "verified", False: "no", None: "-"}[m.vision_ok]
            name = m.name + (" (deprecated)" if m.deprecated else "")
            table.add_row(name, m.backend, caps, ",".join(m.roles) or "-", "yes" if m.locked else "no", vision)
        _console().print(table)

    def selection(self, s: Any) -> None:
        from rich.table import Table

        table = Table(show_header=False, box=None, pad_edge=False)
        table.add_column(style="bold")
        table.add_column()
        caps = ",".join(c for c in _CAP_ORDER if s.capabilities.get(c))
        rows = [
            ("name", s.name), ("endpoint", s.endpoint), ("backend", s.backend),
            ("internal_model_id", s.internal_model_id), ("capabilities", caps),
            ("locked", "yes" if s.locked else "no"),
        ]
        if s.deprecated:
            rows.append(("deprecated", "yes: prefer a current model"))
        for k, v in rows:
            table.add_row(k, v)
        _console().print(table)

    def verified(self, r: Any) -> None:
        rate = r.bytes / r.seconds / 1e9 if r.seconds > 0 else 0.0
        self.line(
            f"ok  {r.name}: {r.files} files, {_size(r.bytes)} in {r.seconds:.2f}s ({rate:.2f} GB/s)\n"
            f"aggregate_sha256 {r.aggregate_sha256}" + ("  [locked: matches]" if r.locked else "")
        )
        for label in ("changed", "added", "removed"):
            files = r.changes.get(label) or []
            if files:
                self.line(f"{label} since the last verify: {', '.join(files)}")

    def lock_result(self, r: Any) -> None:
        state = "locked" if r.locked else "unlocked"
        note = "" if r.changed else " (no change)"
        expected = f"\nexpected_aggregate_sha256 {r.expected_aggregate_sha256}" if r.expected_aggregate_sha256 else ""
        self.line(f"{r.name}: {state}{note}{expected}")

    def probe(self, r: Any) -> None:
        mark = {"verified": "verified", "not_supported": "NOT SUPPORTED", "unknown": "UNKNOWN"}[r.outcome.value]
        self.line(f"{r.name}: {mark} ({r.probe_version}, {r.latency_ms:.0f} ms)")
        for i, rd in enumerate(r.rounds, 1):
            verdict = "pass" if rd.passed else "fail"
            self.line(f"  round {i}: {rd.shape} in {rd.colour:<6} -> {rd.answer[:60]!r} [{verdict}]")
        if r.description is not None:
            self.line(f"  description: {r.description}")
        if r.error:
            self.line(f"  {r.error}")
        if r.outcome.value == "unknown":
            self.line("  Nothing was recorded in the registry (only conclusive outcomes are).")

    def bench(self, result: Any) -> None:
        from rich.table import Table

        table = Table(box=None, header_style="bold", pad_edge=False)
        for col in ("#", "TTFT ms", "TOKENS", "DURATION ms", "TOK/S"):
            table.add_column(col, justify="right")
        from ..metrics import throughput

        for i, s in enumerate(result.samples, 1):
            rate = throughput(s)
            table.add_row(str(i), f"{s.ttft_ms:.1f}", str(s.tokens_generated), f"{s.duration_ms:.1f}",
                          "-" if rate is None else f"{rate:.1f}")
        _console().print(table)
        self.metrics_table([result.summary])

    def metrics_table(self, summaries: list[Any]) -> None:
        from rich.table import Table

        def f(x: float | None, fmt: str = ".1f") -> str:
            return "-" if x is None else format(x, fmt)

        table = Table(box=None, header_style="bold", pad_edge=False)
        for col in ("NAME", "SAMPLES", "TTFT AVG ms", "TTFT P50 ms", "TTFT P95 ms", "TOK/S AVG", "LAST SAMPLE"):
            table.add_column(col, justify="left" if col in ("NAME", "LAST SAMPLE") else "right")
        for s in summaries:
            last = s.last_sample["at"] if s.last_sample else "-"
            table.add_row(s.name, str(s.rolling_samples), f(s.ttft_ms_avg), f(s.ttft_ms_p50), f(s.ttft_ms_p95),
                          f(s.throughput_toks_per_s_avg), last)
        _console().print(table)

    # ----------------------------------------------------------------- progress

    @contextlib.contextmanager
    def count_progress(self, label: str, total: int) -> Iterator[Callable[[int], None] | None]:
        """An ``advance(n)`` callback driving a progress bar on a terminal; None on a pipe."""
        if not sys.stderr.isatty():
            yield None
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        progress = Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                            console=_console(stderr=True), transient=True)
        with progress:
            task = progress.add_task(label, total=total)
            yield lambda n: progress.advance(task, n)

    @contextlib.contextmanager
    def hash_progress(
        self, label: str
    ) -> Iterator[tuple[Callable[[int, int], None] | None, Callable[[int], None] | None]]:
        """(on_start, advance) callbacks driving a progress bar on a terminal; (None, None) on a pipe."""
        if not sys.stderr.isatty():
            yield None, None
            return
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        progress = Progress(
            TextColumn(f"{label} {{task.fields[files]}} files"), BarColumn(), DownloadColumn(),
            TransferSpeedColumn(), TimeRemainingColumn(), console=_console(stderr=True), transient=True,
        )
        task: list[Any] = []

        def on_start(files: int, total: int) -> None:
            task.append(progress.add_task(label, total=total, files=files))

        def advance(n: int) -> None:
            if task:
                progress.advance(task[0], n)

        with progress:
            yield on_start, advance


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"
