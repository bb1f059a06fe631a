"""The registry file: parse and validate it, cache it by stat, and write it safely.

Reads are cheap: a parsed snapshot is reused until the file's (mtime_ns, size, inode) changes, so a
running server sees hand edits without a restart. Writes are read-modify-write cycles of the file *as it
is on disk* under an inter-process ``flock``; the new text goes to a temporary file in the same folder,
is flushed and fsynced, then renamed over the old one. Readers therefore see the old or the new file,
never a mix, and a writer killed mid-write leaves the old file (the kernel drops its lock).
"""

from __future__ import annotations

import contextlib
import copy
import difflib
import errno
import fcntl
import gc
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .errors import (
    InvalidName,
    LockTimeout,
    ModelNotFound,
    RegistryInvalid,
    RegistryNotFound,
    RegistryWriteError,
)

__all__ = ["Registry", "RegistryStore", "parse_registry", "serialise_registry"]


@dataclass(frozen=True)
class Registry:
    """One validated snapshot of the registry file: the entries in file order, and the file's stamp.

    The raw JSON (for round-trip writes) is not kept here: reads never need it, and writes parse the
    file as it is on disk under the lock (see :meth:`RegistryStore.update_entry`).
    """

    path: Path
    entries: tuple[Any, ...]  # tuple[ModelEntry, ...]; typed loosely to keep pydantic out of import time
    stamp: tuple[int, int, int] = (0, 0, 0)
    _index: dict[str, int] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self._index:  # handed over by a write that changed no name or alias
            return
        index: dict[str, int] = {}
        for i, entry in enumerate(self.entries):
            index[entry.name] = i
        for i, entry in enumerate(self.entries):
            for alias in entry.aliases:
                index.setdefault(alias, i)
        object.__setattr__(self, "_index", index)

    def get(self, name: str) -> Any:
        """The entry named ``name`` (or with that alias); ModelNotFound suggests close names.

        A name no entry could have (empty, ``../x``, control characters) is InvalidName instead, so
        callers learn that the request itself is malformed.
        """
        i = self._index.get(name) if isinstance(name, str) else None
        if i is None:
            from .schema import name_problem

            problem = name_problem(name, alias=True)
            if problem:
                raise InvalidName(str(name)[:200], problem)
            raise ModelNotFound(name, self.suggest(name))
        return self.entries[i]

    def role_order(self, role: str) -> list[Any]:
        """Entries listing ``role`` in selection order, computed once per snapshot and role."""
        cache = self.__dict__.setdefault("_role_orders", {})
        order = cache.get(role)
        if order is None:
            from .selection import role_order

            order = role_order(self.entries, role)
            if len(cache) < 1024:  # bounded: callers may ask for any number of unknown roles
                cache[role] = order
        return order

    def index_of(self, name: str) -> int:
        self.get(name)
        return self._index[name]

    def suggest(self, name: str) -> list[str]:
        """Up to three known names close to ``name`` (for "did you mean")."""
        if not isinstance(name, str) or len(name) > 256:
            return []
        lowered: dict[str, str] = {}
        for e in self.entries:
            for known in (e.name, *e.aliases):
                lowered.setdefault(known.lower(), known)
        if name.lower() in lowered:
            return [lowered[name.lower()]]
        close = difflib.get_close_matches(name.lower(), list(lowered), n=3, cutoff=0.6)
        return [lowered[c] for c in close]


def _loads(text: str | bytes) -> Any:
    """orjson when it can (several times faster); the stdlib for what it refuses (NaN, huge ints)
    and for error positions, so messages always carry json's line and column."""
    try:
        import orjson
    except ImportError:  # pragma: no cover - orjson is a dependency; keep working without it
        return json.loads(text)
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def _friendly(err: Any) -> str:
    if err.get("type") == "string_pattern_mismatch" and str(err["loc"][-1]).endswith("sha256"):
        return "must be 64 lowercase hex digits (a sha256), or empty"
    return err["msg"]


def _entry_label(index: int, item: Any) -> str:
    name = item.get("name") if isinstance(item, dict) else None
    return f"entry {index}" + (f" ({name!r})" if isinstance(name, str) else "")


_ENTRIES: Any = None


def _entries_adapter() -> Any:
    global _ENTRIES
    if _ENTRIES is None:
        from pydantic import TypeAdapter

        from .schema import ModelEntry

        _ENTRIES = TypeAdapter(list[ModelEntry])
    return _ENTRIES


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic GC while building a large acyclic object graph.

    Parsing 10,000 entries allocates about a million objects, which would trigger several full
    collections that find nothing (they cost a third of the load time); nothing built here is cyclic.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def parse_registry(text: str | bytes, path: Path, stamp: tuple[int, int, int] = (0, 0, 0)) -> Registry:
    """Parse and validate registry text; RegistryInvalid lists every problem found."""
    return _parse(text, path, stamp)[0]


def _parse(text: str | bytes, path: Path, stamp: tuple[int, int, int]) -> tuple[Registry, list[dict[str, Any]]]:
    """(validated snapshot, parsed JSON). The fast path validates the whole list in one call into
    pydantic's core; only when that fails does the slow path run entry by entry to name every problem
    with its entry's index and name."""
    from pydantic import ValidationError

    raw = parse_json(text, path)
    try:
        with _gc_paused():
            entries = _entries_adapter().validate_python(raw)
    except ValidationError:
        entries = _validate_slowly(raw, path)
    problems = _duplicate_problems(entries)
    if problems:
        raise RegistryInvalid(path, problems)
    return Registry(path=path, entries=tuple(entries), stamp=stamp), raw


def _validate_slowly(raw: list[Any], path: Path) -> list[Any]:
    """Per-entry validation that collects every problem."""
    from pydantic import ValidationError

    from .schema import ModelEntry

    problems: list[str] = []
    entries: list[Any] = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            problems.append(f"entry {i}: must be a JSON object, found {type(item).__name__}")
            continue
        try:
            entries.append(ModelEntry.model_validate(item))
        except ValidationError as exc:
            label = _entry_label(i, item)
            for err in exc.errors(include_url=False, include_input=False):
                loc = ".".join(str(p) for p in err["loc"]) or "(entry)"
                problems.append(f"{label}: field {loc}: {_friendly(err)}")
    if problems:
        raise RegistryInvalid(path, problems)
    return entries


def parse_json(text: str | bytes, path: Path) -> list[Any]:
    """The registry's JSON as Python objects; RegistryInvalid with line and column when malformed."""
    try:
        with _gc_paused():
            raw = _loads(text)
    except json.JSONDecodeError as exc:
        raise RegistryInvalid(
            path, [f"malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"]
        ) from None
    except (UnicodeDecodeError, RecursionError) as exc:
        raise RegistryInvalid(path, [f"unreadable JSON: {type(exc).__name__}"]) from None
    if not isinstance(raw, list):
        raise RegistryInvalid(
            path, [f"the top level must be a JSON array of entries, found a {type(raw).__name__}"]
        )
    return raw


def _duplicate_problems(entries: list[Any]) -> list[str]:
    """Two entries with one name, or an alias that points at two entries, make selection ambiguous."""
    problems = []
    owner: dict[str, int] = {}
    for i, entry in enumerate(entries):
        if entry.name in owner:
            problems.append(f"duplicate name {entry.name!r}: entries {owner[entry.name]} and {i}")
        else:
            owner[entry.name] = i
    alias_owner: dict[str, int] = {}
    for i, entry in enumerate(entries):
        for alias in dict.fromkeys(entry.aliases):
            if alias == entry.name:
                continue
            j = owner.get(alias, alias_owner.get(alias))
            if j is not None and j != i:
                problems.append(
                    f"alias {alias!r} of entry {i} ({entry.name!r}) is already the name or an alias of "
                    f"entry {j} ({entries[j].name!r})"
                )
            else:
                alias_owner[alias] = i
    return problems


def serialise_registry(raw: list[dict[str, Any]]) -> bytes:
    """The on-disk form: 2-space indented UTF-8 JSON with a final newline (as imageworks writes it).

    orjson writes byte-for-byte what ``json.dumps(indent=2, ensure_ascii=False)`` writes, 20 times
    faster; the stdlib takes over for values orjson refuses (integers over 64 bits, NaN).
    """
    try:
        import orjson

        return orjson.dumps(raw, option=orjson.OPT_INDENT_2) + b"\n"
    except (ImportError, TypeError, ValueError):
        return (json.dumps(raw, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def _stamp(st: os.stat_result) -> tuple[int, int, int]:
    return (st.st_mtime_ns, st.st_size, st.st_ino)


class RegistryStore:
    """Owns one registry file: cached validated reads, locked atomic read-modify-write cycles.

    The last validated bytes are kept, so a re-read of an unchanged file (a ``touch``, our own write
    seen again, a write cycle on a file nobody else changed) skips validation entirely.
    """

    def __init__(self, path: str | os.PathLike[str], *, lock_timeout: float = 10.0) -> None:
        self.path = Path(path)
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self.lock_timeout = lock_timeout
        self._cached: Registry | None = None
        self._cached_bytes: bytes | None = None
        self._cached_raw: list[dict[str, Any]] | None = None  # parsed JSON of _cached_bytes (never mutated)
        self._last_good: Registry | None = None
        self._failed: tuple[tuple[int, int, int], RegistryInvalid] | None = None  # don't re-parse a bad file
        self._mutex = threading.Lock()

    # ------------------------------------------------------------------ reads

    def load(self) -> Registry:
        """The current registry; re-validated only when the file's bytes changed."""
        try:
            stamp = _stamp(os.stat(self.path))
        except (FileNotFoundError, NotADirectoryError):
            raise RegistryNotFound(self.path) from None
        cached = self._cached
        if cached is not None and cached.stamp == stamp:
            return cached
        failed = self._failed
        if failed is not None and failed[0] == stamp:
            raise failed[1]
        with self._mutex:
            data, stamp = self._read()
            return self._snapshot(data, stamp)

    def load_or_last_good(self) -> tuple[Registry, Exception | None]:
        """For a running server: the current registry, or the last good one plus the reason it is stale."""
        try:
            return self.load(), None
        except (RegistryInvalid, RegistryNotFound) as exc:
            if self._last_good is None:
                raise
            return self._last_good, exc

    def _read(self) -> tuple[bytes, tuple[int, int, int]]:
        try:
            with open(self.path, "rb") as f:
                st = os.fstat(f.fileno())
                return f.read(), _stamp(st)
        except (FileNotFoundError, NotADirectoryError):
            raise RegistryNotFound(self.path) from None
        except IsADirectoryError:
            raise RegistryInvalid(self.path, ["is a directory, not a JSON file"]) from None

    def _snapshot(self, data: bytes, stamp: tuple[int, int, int]) -> Registry:
        """Validate ``data`` unless it is byte-identical to the last validated file. Hold ``_mutex``."""
        cached = self._cached
        if cached is not None and data == self._cached_bytes:
            registry = cached if cached.stamp == stamp else replace(cached, stamp=stamp)
        else:
            try:
                registry, raw = _parse(data, self.path, stamp)
            except RegistryInvalid as exc:
                self._failed = (stamp, exc)
                raise
            self._cached_bytes, self._cached_raw = data, raw
        self._cached = self._last_good = registry
        self._failed = None
        return registry

    # ------------------------------------------------------------------ writes

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the inter-process write lock (``<registry>.lock``), waiting up to ``lock_timeout``.

        ``flock`` belongs to the open file description, so a crashed holder never leaves a stale lock.
        """
        try:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise RegistryWriteError(self.path, f"cannot create lock file {self.lock_path} ({exc.strerror})") from None
        try:
            deadline = time.monotonic() + self.lock_timeout
            delay = 0.001
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise LockTimeout(self.lock_path, self.lock_timeout) from None
                    time.sleep(delay)
                    delay = min(delay * 2, 0.05)
            self._remove_stale_temp_files()
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    def _remove_stale_temp_files(self) -> None:
        """Delete temp files left by writers that died mid-write (call with the lock held).

        Temp files are only ever created under the lock, so while we hold it any that exist belong to
        a writer that is gone.
        """
        prefix = f".{self.path.name}."
        try:
            names = os.listdir(self.path.parent)
        except OSError:
            return
        for name in names:
            if name.startswith(prefix) and name.endswith(".tmp"):
                with contextlib.suppress(OSError):
                    os.unlink(self.path.parent / name)

    @contextlib.contextmanager
    def edit(self) -> Iterator[list[dict[str, Any]]]:
        """Read-modify-write of the whole file: lock, read it as it is now, yield its parsed JSON list.

        The body changes the list in place. If the file on disk is invalid, RegistryInvalid is raised
        before the body runs; if the body raises, or the result would not validate, nothing is written.
        """
        with self.locked():
            data, stamp = self._read()
            with self._mutex:
                self._snapshot(data, stamp)
            raw = parse_json(data, self.path)  # a private copy: the body may change anything
            yield raw
            new = serialise_registry(raw)
            registry, raw = _parse(new, self.path, (0, 0, 0))
            self._commit(new, raw, registry.entries)

    def update_entry(self, name: str, change: Callable[[dict[str, Any]], Any]) -> Any:
        """Apply ``change`` to the raw dict of entry ``name`` (or alias) inside one locked cycle.

        Only the changed entry is validated again (plus the cheap duplicate check); when the file is
        unchanged since the last read, nothing else is parsed or validated, which keeps a write on a
        10,000-entry registry fast.
        """
        from pydantic import ValidationError

        from .schema import ModelEntry

        with self.locked():
            data, stamp = self._read()
            with self._mutex:
                current = self._snapshot(data, stamp)
                cached_raw = self._cached_raw
                assert cached_raw is not None  # _snapshot keeps the parsed JSON of the bytes it validated
            i = current.index_of(name)
            raw = list(cached_raw)  # never mutate the cached list: copy it and the one entry changed
            raw[i] = copy.deepcopy(cached_raw[i])
            result = change(raw[i])
            try:
                entry = ModelEntry.model_validate(raw[i])
            except ValidationError as exc:  # a bug in ``change``: refuse to write it
                raise RegistryInvalid(self.path, [f"{_entry_label(i, raw[i])}: {exc}"]) from None
            entries = list(current.entries)
            old, entries[i] = entries[i], entry
            same_names = (old.name, old.aliases) == (entry.name, entry.aliases)
            if not same_names:
                problems = _duplicate_problems(entries)
                if problems:
                    raise RegistryInvalid(self.path, problems)
            self._commit(serialise_registry(raw), raw, entries, index=current._index if same_names else None)
            return result

    def _commit(self, data: bytes, raw: list[dict[str, Any]], entries: list[Any] | tuple[Any, ...],
                index: dict[str, int] | None = None) -> None:
        self._atomic_write(data)
        registry = Registry(path=self.path, entries=tuple(entries), stamp=_stamp(os.stat(self.path)),
                            _index=index or {})
        with self._mutex:
            self._cached = self._last_good = registry
            self._cached_bytes, self._cached_raw = data, raw

    def _atomic_write(self, data: bytes) -> None:
        folder = self.path.parent
        tmp_name = None
        try:
            try:
                mode = os.stat(self.path).st_mode & 0o777
            except FileNotFoundError:
                mode = 0o644
            fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=f".{self.path.name}.", suffix=".tmp")
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp_name, mode)
            os.replace(tmp_name, self.path)
            tmp_name = None
            dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as exc:
            reason = {
                errno.ENOSPC: "the disk is full",
                errno.EDQUOT: "the disk quota is exceeded",
                errno.EROFS: "the file system is read-only",
                errno.EACCES: "permission denied",
                errno.EPERM: "permission denied",
            }.get(exc.errno or 0, exc.strerror or type(exc).__name__)
            raise RegistryWriteError(self.path, reason) from None
        finally:
            if tmp_name is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp_name)
