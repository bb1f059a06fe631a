"""Use cases shared by the CLI and the API: list, select, verify, lock, unlock.

A :class:`Loader` owns a registry store and its state database; adapters build one, call one method
per request or command, and format the result. Nothing here prints or knows about HTTP.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .capabilities import parse_required
from .errors import ArtifactsMissing, CorruptArtifact, InvalidName, LockViolation
from .integrity import (
    ArtifactFile,
    aggregate_sha256,
    content_address,
    diff_files,
    hash_files,
    scan_artifacts,
)
from .metrics import DEFAULT_WINDOW
from .selection import Selection, select_by_name, select_by_role
from .state import StateDB, state_path_for
from .store import Registry, RegistryStore

__all__ = ["Loader", "LockResult", "ModelSummary", "VerifyResult", "utc_now"]


def utc_now() -> str:
    """An ISO 8601 UTC timestamp, the format imageworks writes."""
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class ModelSummary:
    """One row of ``list``: what a model is and what it can do."""

    name: str
    backend: str
    capabilities: dict[str, bool]
    locked: bool
    vision_ok: bool | None
    display_name: str | None
    deprecated: bool
    roles: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "backend": self.backend,
            "capabilities": self.capabilities,
            "locked": self.locked,
            "vision_ok": self.vision_ok,
            "display_name": self.display_name,
            "deprecated": self.deprecated,
            "roles": list(self.roles),
        }


@dataclass(frozen=True)
class VerifyResult:
    """A successful verify: the aggregate and what was hashed."""

    name: str
    aggregate_sha256: str
    files: int
    bytes: int
    seconds: float
    locked: bool
    changes: dict[str, list[str]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": "ok",
            "name": self.name,
            "aggregate_sha256": self.aggregate_sha256,
            "files": self.files,
            "bytes": self.bytes,
            "seconds": round(self.seconds, 3),
            "locked": self.locked,
            "changes": self.changes,
        }


@dataclass(frozen=True)
class LockResult:
    name: str
    locked: bool
    expected_aggregate_sha256: str | None
    changed: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "locked": self.locked,
            "expected_aggregate_sha256": self.expected_aggregate_sha256,
            "changed": self.changed,
        }


def model_summary(entry: Any) -> ModelSummary:
    return ModelSummary(
        name=entry.name,
        backend=entry.backend,
        capabilities=dict(entry.caps),
        locked=entry.locked,
        vision_ok=entry.vision_ok,
        display_name=entry.display_name,
        deprecated=entry.is_deprecated,
        roles=tuple(entry.role_names),
    )


class Loader:
    """The registry, its state database and the use cases over them."""

    def __init__(
        self,
        registry_path: str | os.PathLike[str],
        *,
        lock_timeout: float = 10.0,
        hash_workers: int | None = None,
    ) -> None:
        self.store = RegistryStore(registry_path, lock_timeout=lock_timeout)
        self.state = StateDB(state_path_for(self.store.path))
        self.hash_workers = hash_workers

    def registry(self) -> Registry:
        return self.store.load()

    # ------------------------------------------------------------------ list / select

    def list_models(self, role: str | None = None, registry: Registry | None = None) -> list[ModelSummary]:
        """Every entry (or those listing ``role``), sorted by name bytes."""
        registry = registry or self.store.load()
        entries = [e for e in registry.entries if role is None or role in e.role_names]
        entries.sort(key=lambda e: e.name.encode("utf-8"))
        return [model_summary(e) for e in entries]

    def select(
        self,
        *,
        name: str | None = None,
        role: str | None = None,
        require: Sequence[str] = (),
        registry: Registry | None = None,
        check_backend: bool = False,
        check_timeout: float = 2.0,
    ) -> Selection:
        """Resolve a name/alias or a role to an endpoint; refuse gaps and drifted locked models.

        ``check_backend`` also asks the endpoint's ``/models`` whether it serves the model now.
        """
        if (name is None) == (role is None):
            raise InvalidName(str(name or role or ""), "give exactly one of a name or a role")
        required = parse_required(require)
        registry = registry or self.store.load()
        if name is not None:
            chosen = select_by_name(registry, name, required)
        else:
            chosen = select_by_role(registry, role or "", required)
        if chosen.locked:
            self.check_lock_fingerprints(registry.get(chosen.name))
        if check_backend:
            from .backends import BackendClient
            from .errors import BackendError, BackendNotReady

            try:
                with BackendClient(chosen.endpoint, timeout=check_timeout, connect_timeout=check_timeout) as client:
                    client.require_model(chosen.internal_model_id)
            except BackendError as exc:
                raise BackendNotReady(chosen.name, exc) from None
        return chosen

    def backend_status(self, selections: Sequence[Selection], *, timeout: float = 2.0) -> dict[str, bool]:
        """{name: does its backend serve it now}, asking each distinct endpoint once, concurrently."""
        from concurrent.futures import ThreadPoolExecutor

        from .backends import BackendClient
        from .errors import BackendError

        endpoints = sorted({s.endpoint for s in selections})

        def served(endpoint: str) -> set[str] | None:
            try:
                with BackendClient(endpoint, timeout=timeout, connect_timeout=timeout) as client:
                    return set(client.list_models())
            except BackendError:
                return None

        if not endpoints:
            return {}
        with ThreadPoolExecutor(max_workers=min(32, len(endpoints)), thread_name_prefix="iwl-check") as pool:
            answers = dict(zip(endpoints, pool.map(served, endpoints), strict=True))
        return {s.name: s.internal_model_id in (answers[s.endpoint] or ()) for s in selections}

    def check_lock_fingerprints(self, entry: Any) -> None:
        """A locked model is usable only while its files match the last verify (stat only, no hashing)."""
        name = entry.name
        aggregate, recorded = self.state.verified(name)
        verify_hint = f"Run 'imageworks-loader verify {name}'."
        if aggregate is None:
            raise LockViolation(name, reason="it has not been verified on this machine", hint=verify_hint)
        reference = self._lock_reference(entry)
        if reference and reference != aggregate:
            raise LockViolation(
                name,
                reason="the lock's expected hash is not the one the last verify saw",
                expected=reference,
                actual=aggregate,
                hint=verify_hint,
            )
        try:
            files, dangling = self._scan(entry)
        except ArtifactsMissing as exc:
            raise LockViolation(name, reason=exc.message.rstrip("."), hint=verify_hint) from None
        current = {f.path: f.fingerprint for f in files}
        for path in dangling:
            current.pop(path, None)
        diff = diff_files(recorded, current)
        if diff:
            raise LockViolation(
                name, changed=diff.changed, added=diff.added, removed=diff.removed,
                hint=f"Files changed since the last verify. {verify_hint}",
            )

    @staticmethod
    def _lock_reference(entry: Any) -> str | None:
        return entry.expected_aggregate or entry.recorded_aggregate

    # ------------------------------------------------------------------ integrity

    def _scan(self, entry: Any) -> tuple[list[ArtifactFile], list[str]]:
        model_path = (entry.model_path or "").strip()
        if not model_path:
            raise ArtifactsMissing(
                entry.name, "backend_config.model_path is not set; add the model's folder to the entry"
            )
        if "://" in model_path or model_path.startswith(("ollama:", "hf:")):
            raise ArtifactsMissing(
                entry.name,
                f"model_path {model_path!r} is not a local folder; set it to the folder holding the files",
            )
        path = Path(model_path).expanduser()
        if not path.is_absolute():
            path = self.store.path.parent.resolve() / path  # relative to the registry, not the cwd
        try:
            files, dangling = scan_artifacts(path)
        except FileNotFoundError:
            raise ArtifactsMissing(entry.name, f"model_path {model_path} does not exist") from None
        except NotADirectoryError:
            raise ArtifactsMissing(entry.name, f"model_path {model_path} is not a folder or file") from None
        except PermissionError:
            raise ArtifactsMissing(entry.name, f"model_path {model_path} is not readable") from None
        if not files:
            raise ArtifactsMissing(entry.name, f"model_path {model_path} holds no files")
        return files, dangling

    def verify(
        self,
        name: str,
        *,
        progress: Callable[[int], None] | None = None,
        on_start: Callable[[int, int], None] | None = None,
    ) -> VerifyResult:
        """Rehash every file, check content addresses and the lock, and record the result.

        On any failure nothing is recorded, so a drifted locked model stays refused by select.
        ``on_start(files, bytes)`` is called once the artifact set is known (for progress bars).
        """
        from .schema import ModelEntry

        entry = self.store.load().get(name)
        name = entry.name
        started = time.perf_counter()
        files, dangling = self._scan(entry)
        if dangling:
            raise ArtifactsMissing(name, f"broken symlinks: {', '.join(dangling[:10])}")
        total = sum(f.fingerprint.size for f in files)
        if on_start is not None:
            on_start(len(files), total)
        try:
            hashes = hash_files(files, workers=self.hash_workers, progress=progress)
        except FileNotFoundError as exc:
            raise ArtifactsMissing(name, f"a file disappeared while hashing ({exc.filename})") from None
        except PermissionError as exc:
            raise ArtifactsMissing(name, f"a file is not readable ({exc.filename})") from None
        after, _ = self._scan(entry)
        moved = diff_files({f.path: f.fingerprint for f in files}, {f.path: f.fingerprint for f in after})
        if moved:
            raise LockViolation(
                name, changed=moved.changed, added=moved.added, removed=moved.removed,
                reason="files changed while they were being hashed",
                hint="Files changed during verify; wait for copies to finish and run verify again.",
            )
        corrupt = [
            (f.path, expected, hashes[f.path])
            for f in files
            if (expected := content_address(f.abspath)) and expected != hashes[f.path]
        ]
        if corrupt:
            raise CorruptArtifact(name, corrupt)
        aggregate = aggregate_sha256(hashes)
        outcome: dict[str, Any] = {}

        def record(raw: dict[str, Any]) -> None:
            current = ModelEntry.model_validate(raw)  # the entry as it is on disk now, under the lock
            recorded = current.recorded_files
            diff = diff_files(recorded, hashes) if recorded else None
            reference = self._lock_reference(current)
            if current.locked and reference and reference != aggregate:
                raise LockViolation(
                    name,
                    changed=diff.changed if diff else (),
                    added=diff.added if diff else (),
                    removed=diff.removed if diff else (),
                    reason="" if diff else "the aggregate differs from the lock",
                    expected=reference,
                    actual=aggregate,
                    hint=f"If the new files are intended, re-baseline the lock with "
                    f"'imageworks-loader lock {name} --set-expected --replace'.",
                )
            artifacts = _block(raw, "artifacts")
            artifacts["aggregate_sha256"] = aggregate
            artifacts["files"] = [{"path": p, "sha256": hashes[p]} for p in sorted(hashes, key=_path_key)]
            _block(raw, "version_lock")["last_verified"] = utc_now()
            outcome["locked"] = current.locked
            outcome["diff"] = diff

        self.store.update_entry(name, record)
        self.state.record_verified(name, aggregate, {f.path: (f.fingerprint, hashes[f.path]) for f in files})
        diff = outcome["diff"]
        return VerifyResult(
            name=name,
            aggregate_sha256=aggregate,
            files=len(files),
            bytes=total,
            seconds=time.perf_counter() - started,
            locked=outcome["locked"],
            changes={"changed": list(diff.changed), "added": list(diff.added), "removed": list(diff.removed)}
            if diff
            else {},
        )

    def lock(
        self,
        name: str,
        *,
        set_expected: bool = False,
        replace: bool = False,
        progress: Callable[[int], None] | None = None,
        on_start: Callable[[int, int], None] | None = None,
    ) -> LockResult:
        """Set ``locked``; with ``set_expected``, fill an empty expected hash from the current files.

        ``replace`` re-baselines: the expected hash becomes the current files' hash even if one was
        set (the deliberate way to accept new files for a locked model).
        """
        fresh = None
        if set_expected or replace:  # only these need the entry before the locked write
            entry = self.store.load().get(name)
            name = entry.name
            if replace:
                if entry.locked:
                    self.unlock(name)  # verify of new files must not be judged by the old lock
                fresh = self.verify(name, progress=progress, on_start=on_start).aggregate_sha256
            elif not entry.expected_aggregate:
                fresh = self.verify(name, progress=progress, on_start=on_start).aggregate_sha256

        def change(raw: dict[str, Any]) -> LockResult:
            lock = _block(raw, "version_lock")
            before = (lock.get("locked"), lock.get("expected_aggregate_sha256"))
            lock["locked"] = True
            if fresh and (replace or not lock.get("expected_aggregate_sha256")):
                lock["expected_aggregate_sha256"] = fresh
            after = (lock["locked"], lock.get("expected_aggregate_sha256"))
            return LockResult(raw["name"], True, lock.get("expected_aggregate_sha256"), before != after)

        return self.store.update_entry(name, change)

    # ------------------------------------------------------------------ vision probe

    def probe_vision(
        self,
        name: str,
        *,
        image: Any = None,
        timeout: float = 60.0,
        connect_timeout: float = 5.0,
        rng: Any = None,
    ) -> Any:
        """Run the vision challenge against the model's endpoint and record what it proved.

        Every attempt goes into the probe history; only a conclusive outcome (verified or
        not_supported) updates ``probes.vision`` in the registry, so a dead backend never flips it.
        """
        from .backends import BackendClient
        from .probe import run_vision_probe
        from .selection import endpoint_for
        from .state import ProbeRecord

        entry = self.store.load().get(name)
        with BackendClient(endpoint_for(entry), timeout=timeout, connect_timeout=connect_timeout) as client:
            result = run_vision_probe(
                client, name=entry.name, model_id=entry.internal_model_id, rng=rng, image=image,
                timestamp=utc_now(),
            )
        self.state.add_probe(ProbeRecord(
            model=entry.name, kind="vision", at=time.time(), outcome=result.outcome.value,
            latency_ms=result.latency_ms, probe_version=result.probe_version, detail=result.to_dict(),
        ))
        if result.outcome.conclusive:
            record = {
                "vision_ok": result.vision_ok,
                "timestamp": result.timestamp,
                "probe_version": result.probe_version,
                "latency_ms": round(result.latency_ms, 1),
                "notes": result.notes(),
            }

            self.store.update_entry(entry.name, lambda raw: _block(raw, "probes").update(vision=record))
        return result

    # ------------------------------------------------------------------ metrics

    def add_samples(self, name: str, samples: Sequence[Any], *, source: str = "client") -> None:
        """Record measured samples (state database only: no registry write per sample)."""
        from .errors import InvalidSample
        from .metrics import check_sample

        entry = self.store.load().get(name)
        for s in samples:
            problems = check_sample(s.ttft_ms, s.tokens_generated, s.duration_ms)
            if problems:
                raise InvalidSample(problems)
        self.state.add_samples(entry.name, samples, source)

    def metrics(self, name: str, *, window: int = DEFAULT_WINDOW) -> Any:
        """The rolling summary of one model; ModelNotFound for names not in the registry."""
        from .metrics import summarise

        entry = self.store.load().get(name)
        return summarise(entry.name, self.state.recent_samples(entry.name, window), window)

    def all_metrics(self, *, window: int = DEFAULT_WINDOW) -> list[Any]:
        from .metrics import summarise

        return [
            summarise(e.name, self.state.recent_samples(e.name, window), window)
            for e in sorted(self.store.load().entries, key=lambda e: e.name.encode("utf-8"))
        ]

    def bench(
        self,
        name: str,
        spec: Any,
        *,
        window: int = DEFAULT_WINDOW,
        timeout: float = 60.0,
        connect_timeout: float = 5.0,
        progress: Callable[[int], None] | None = None,
    ) -> Any:
        """Measure the model with streamed requests, record the samples, and write the summary.

        All samples land in the state database in one transaction, then the registry's
        ``performance`` block gets the new summary in one locked write. A failed run records nothing.
        """
        from .backends import BackendClient
        from .bench import run_bench
        from .selection import endpoint_for

        entry = self.store.load().get(name)
        with BackendClient(endpoint_for(entry), timeout=timeout, connect_timeout=connect_timeout) as client:
            samples = run_bench(client, entry.internal_model_id, spec, progress=progress)
        self.state.add_samples(entry.name, samples, "bench")
        summary = self.metrics(entry.name, window=window)
        block = summary.performance_block()

        self.store.update_entry(entry.name, lambda raw: _block(raw, "performance").update(block))
        from .metrics import BenchResult

        return BenchResult(tuple(samples), summary)

    def unlock(self, name: str) -> LockResult:
        """Clear ``locked``; keep the expected hash for a later re-lock."""

        def change(raw: dict[str, Any]) -> LockResult:
            lock = raw.get("version_lock")
            if not isinstance(lock, dict):
                return LockResult(raw["name"], False, None, False)
            was = bool(lock.get("locked"))
            lock["locked"] = False
            return LockResult(raw["name"], False, lock.get("expected_aggregate_sha256"), was)

        return self.store.update_entry(name, change)


_BLOCK_DEFAULTS: dict[str, dict[str, Any]] = {
    # What imageworks writes for a fresh entry, so a block the loader creates looks like its own.
    "version_lock": {"locked": False, "expected_aggregate_sha256": None, "last_verified": None},
    "artifacts": {"aggregate_sha256": "", "files": []},
}


def _block(raw: dict[str, Any], key: str) -> dict[str, Any]:
    """The raw entry's ``key`` object, created in place when it is missing or null (others kept as is)."""
    value = raw.get(key)
    if not isinstance(value, dict):
        value = raw[key] = dict(_BLOCK_DEFAULTS.get(key, {}))
    return value


def _path_key(path: str) -> bytes:
    return path.encode("utf-8", "surrogateescape")
