"""Machine-appended state in SQLite (WAL) beside the registry: fingerprints, probe history, samples.

JSON is for what people edit and review; this database is for what machines append. It lives next
to the registry as ``<registry stem>.state.sqlite`` so the two travel together.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import RegistryWriteError

__all__ = ["Fingerprint", "ProbeRecord", "Sample", "StateDB", "state_path_for"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS fingerprints (
    model TEXT NOT NULL,
    path TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    ctime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    verified_at REAL NOT NULL,
    PRIMARY KEY (model, path)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS verified (
    model TEXT PRIMARY KEY,
    aggregate_sha256 TEXT NOT NULL,
    verified_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS probe_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    model TEXT NOT NULL,
    kind TEXT NOT NULL,
    at REAL NOT NULL,
    outcome TEXT NOT NULL,
    latency_ms REAL,
    probe_version TEXT,
    detail TEXT
);
CREATE INDEX IF NOT EXISTS probe_history_model ON probe_history (model, id);
CREATE TABLE IF NOT EXISTS samples (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    model TEXT NOT NULL,
    at REAL NOT NULL,
    ttft_ms REAL NOT NULL,
    tokens_generated INTEGER NOT NULL,
    duration_ms REAL NOT NULL,
    source TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS samples_model ON samples (model, id);
"""


def state_path_for(registry_path: Path) -> Path:
    """``configs/model_registry.json`` -> ``configs/model_registry.state.sqlite``."""
    return registry_path.with_name(registry_path.stem + ".state.sqlite")


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """What ``stat`` says of a file: if any of these changed, its bytes may have changed."""

    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int


@dataclass(frozen=True, slots=True)
class ProbeRecord:
    model: str
    kind: str
    at: float
    outcome: str
    latency_ms: float | None
    probe_version: str | None
    detail: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Sample:
    """One measured request: time to first token, tokens generated, total duration."""

    ttft_ms: float
    tokens_generated: int
    duration_ms: float
    at: float


class StateDB:
    """A thread-safe handle on the state database (one connection per thread, WAL mode)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self._initialised = False

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
                conn.execute("PRAGMA busy_timeout = 30000")
                if not self._initialised:
                    conn.execute("PRAGMA journal_mode = WAL")
                    conn.executescript(_SCHEMA)
                    self._initialised = True
                conn.execute("PRAGMA synchronous = NORMAL")
            except sqlite3.Error as exc:
                raise RegistryWriteError(self.path, f"cannot open the state database ({exc})") from None
            self._local.conn = conn
        return conn

    def _write(self, statements: Iterable[tuple[str, Sequence[Any]]]) -> None:
        conn = self._conn()
        try:
            conn.execute("BEGIN IMMEDIATE")
            for sql, params in statements:
                conn.execute(sql, params)
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise RegistryWriteError(self.path, f"state database write failed ({exc})") from None

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            return self._conn().execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise RegistryWriteError(self.path, f"state database read failed ({exc})") from None

    # ------------------------------------------------------------- fingerprints

    def record_verified(
        self, model: str, aggregate: str, files: dict[str, tuple[Fingerprint, str]]
    ) -> None:
        """Replace what the last successful verify saw: the aggregate and each file's fingerprint."""
        now = time.time()
        rows = [
            ("INSERT INTO fingerprints VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
             (model, path, fp.size, fp.mtime_ns, fp.ctime_ns, fp.inode, sha, now))
            for path, (fp, sha) in files.items()
        ]
        self._write([
            ("DELETE FROM fingerprints WHERE model = ?", (model,)),
            ("INSERT OR REPLACE INTO verified VALUES (?, ?, ?)", (model, aggregate, now)),
            *rows,
        ])

    def verified(self, model: str) -> tuple[str | None, dict[str, Fingerprint]]:
        """(aggregate, {path: fingerprint}) as of the last successful verify; (None, {}) if none."""
        agg = self._read("SELECT aggregate_sha256 FROM verified WHERE model = ?", (model,))
        if not agg:
            return None, {}
        rows = self._read(
            "SELECT path, size, mtime_ns, ctime_ns, inode FROM fingerprints WHERE model = ?", (model,)
        )
        return agg[0][0], {r[0]: Fingerprint(r[1], r[2], r[3], r[4]) for r in rows}

    # ------------------------------------------------------------- probes

    def add_probe(self, record: ProbeRecord) -> None:
        self._write([(
            "INSERT INTO probe_history (model, kind, at, outcome, latency_ms, probe_version, detail) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (record.model, record.kind, record.at, record.outcome, record.latency_ms,
             record.probe_version, json.dumps(record.detail, sort_keys=True)),
        )])

    def probe_history(self, model: str, limit: int = 20) -> list[ProbeRecord]:
        rows = self._read(
            "SELECT model, kind, at, outcome, latency_ms, probe_version, detail FROM probe_history "
            "WHERE model = ? ORDER BY id DESC LIMIT ?",
            (model, limit),
        )
        return [ProbeRecord(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6] or "{}")) for r in rows]

    def probe_outcome_counts(self) -> dict[tuple[str, str], int]:
        rows = self._read("SELECT model, outcome, COUNT(*) FROM probe_history GROUP BY model, outcome")
        return {(r[0], r[1]): r[2] for r in rows}

    # ------------------------------------------------------------- samples

    def add_samples(self, model: str, samples: Sequence[Sample], source: str) -> None:
        self._write([
            ("INSERT INTO samples (model, at, ttft_ms, tokens_generated, duration_ms, source) "
             "VALUES (?, ?, ?, ?, ?, ?)",
             (model, s.at, s.ttft_ms, s.tokens_generated, s.duration_ms, source))
            for s in samples
        ])

    def recent_samples(self, model: str, window: int) -> list[Sample]:
        """The last ``window`` samples of ``model``, oldest first."""
        rows = self._read(
            "SELECT ttft_ms, tokens_generated, duration_ms, at FROM samples WHERE model = ? "
            "ORDER BY id DESC LIMIT ?",
            (model, window),
        )
        return [Sample(r[0], r[1], r[2], r[3]) for r in reversed(rows)]
