"""Artifact sets, sha256 hashing at disk speed, the aggregate hash, and file diffs.

The aggregate is the sha256 of the sorted lines of a ``sha256sum`` manifest, joined by "\\n" with no
trailing newline, so anyone can recompute it with coreutils::

    cd MODEL_DIR && find -L . -type f -not -path '*/.git/*' -not -path '*/.cache/*' -printf '%P\\0' \\
      | xargs -0 sha256sum | LC_ALL=C sort | head -c -1 | sha256sum

(``sort`` must compare bytes; paths are POSIX, relative to the model folder.)
"""

from __future__ import annotations

import hashlib
import os
import queue
import re
import stat
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from .state import Fingerprint

__all__ = [
    "ArtifactFile",
    "FileDiff",
    "aggregate_sha256",
    "content_address",
    "diff_files",
    "fingerprint_of",
    "hash_file",
    "hash_files",
    "scan_artifacts",
]

#: Folders that are never part of a model: VCS metadata and tool caches.
SKIPPED_DIRS = frozenset({".git", ".cache"})
# Large reads keep per-call Python overhead negligible next to hashing (about 2 ms of work per call).
_CHUNK = 4 << 20
# The pipelined reader hands 1 MiB buffers to the hashing thread: small enough to stay in cache between
# the copy and the hash (measured: 1-2 MiB hash at the one-core limit, 8 MiB and more fall behind).
_PIPE_CHUNK = 1 << 20
_PIPE_BUFFERS = 4
_PIPE_MIN = 32 << 20
_HASH_NICE = 10
_HEX64 = re.compile(r"[0-9a-f]{64}")
_OLLAMA_BLOB = re.compile(r"sha256[-:]([0-9a-f]{64})")

Progress = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class ArtifactFile:
    """One file of a model: its manifest path, where to read it, and its stat fingerprint."""

    path: str  # POSIX, relative to the model folder
    abspath: str
    fingerprint: Fingerprint


@dataclass(frozen=True)
class FileDiff:
    """Paths that changed, appeared or disappeared between two views of a model's files."""

    changed: tuple[str, ...] = ()
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.changed or self.added or self.removed)


def fingerprint_of(st: os.stat_result) -> Fingerprint:
    return Fingerprint(st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def scan_artifacts(root: str | os.PathLike[str]) -> tuple[list[ArtifactFile], list[str]]:
    """Every regular file under ``root`` (following symlinks, skipping .git/.cache), sorted by path.

    Returns (files, dangling) where ``dangling`` lists symlinks whose target is missing. ``root`` may
    also be a single file (a lone GGUF), whose manifest path is its file name. Symlinked folders are
    followed once each, so a link loop cannot recurse forever.
    """
    root = os.fspath(root)
    st = os.stat(root)  # FileNotFoundError / PermissionError go to the caller
    if stat.S_ISREG(st.st_mode):
        return [ArtifactFile(os.path.basename(root), root, fingerprint_of(st))], []
    if not stat.S_ISDIR(st.st_mode):
        raise NotADirectoryError(root)
    files: list[ArtifactFile] = []
    dangling: list[str] = []
    seen_dirs = {(st.st_dev, st.st_ino)}
    stack = [(root, "")]
    while stack:
        folder, prefix = stack.pop()
        with os.scandir(folder) as it:
            for de in it:
                rel = prefix + de.name
                try:
                    est = de.stat(follow_symlinks=True)
                except FileNotFoundError:
                    dangling.append(rel)
                    continue
                if stat.S_ISDIR(est.st_mode):
                    key = (est.st_dev, est.st_ino)
                    if de.name in SKIPPED_DIRS or key in seen_dirs:
                        continue
                    seen_dirs.add(key)
                    stack.append((de.path, rel + "/"))
                elif stat.S_ISREG(est.st_mode):
                    files.append(ArtifactFile(rel, de.path, fingerprint_of(est)))
    files.sort(key=lambda f: f.path.encode("utf-8", "surrogateescape"))
    dangling.sort()
    return files, dangling


def hash_file(path: str | os.PathLike[str], progress: Progress | None = None, *, pipelined: bool = False) -> str:
    """The sha256 hex digest of one file.

    Plain mode reads large chunks into one reused buffer and hashes them. ``pipelined`` mode moves the
    reads (the page-cache copy, or the disk wait) to a second thread, so that one file hashes at the
    one-core SHA-256 limit when a spare core exists. Both release the GIL for nearly all their time.
    """
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if hasattr(os, "posix_fadvise"):
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
        if pipelined:
            return _hash_pipelined(fd, progress)
        h = hashlib.sha256()
        buf = bytearray(_CHUNK)
        view = memoryview(buf)
        while n := os.readv(fd, [buf]):
            h.update(view[:n])
            if progress is not None:
                progress(n)
        return h.hexdigest()
    finally:
        os.close(fd)


def _hash_pipelined(fd: int, progress: Progress | None) -> str:
    h = hashlib.sha256()
    free: queue.SimpleQueue[bytearray | None] = queue.SimpleQueue()
    full: queue.SimpleQueue[tuple[bytearray, int] | BaseException] = queue.SimpleQueue()
    for _ in range(_PIPE_BUFFERS):
        free.put(bytearray(_PIPE_CHUNK))

    def reader() -> None:
        _yield_cpu()
        try:
            while (buf := free.get()) is not None:
                n = os.readv(fd, [buf])
                full.put((buf, n))
                if not n:
                    return
        except BaseException as exc:  # handed to the hashing thread, which re-raises it
            full.put(exc)

    thread = threading.Thread(target=reader, name="iwl-read", daemon=True)
    thread.start()
    try:
        while True:
            item = full.get()
            if isinstance(item, BaseException):
                raise item
            buf, n = item
            if not n:
                return h.hexdigest()
            h.update(memoryview(buf)[:n])
            free.put(buf)
            if progress is not None:
                progress(n)
    finally:
        free.put(None)  # wake and stop the reader whatever happened here
        thread.join()


def _yield_cpu() -> None:
    """Lower this hashing thread's scheduling priority (Linux threads have their own nice value).

    Hashing still takes every idle cycle, but a server's event loop thread wins the CPU when it
    has requests to answer, which keeps list/select latency low during a large verify.
    """
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), _HASH_NICE)
    except (AttributeError, OSError):  # not Linux, or not allowed: hashing works the same
        pass


def hash_files(
    files: Iterable[ArtifactFile],
    *,
    workers: int | None = None,
    progress: Progress | None = None,
) -> dict[str, str]:
    """Hash files in parallel (hashlib releases the GIL), biggest first; returns {path: sha256}.

    When there are fewer files than cores, large files use the pipelined reader so the idle cores
    still help.
    """
    todo = sorted(files, key=lambda f: f.fingerprint.size, reverse=True)
    if not todo:
        return {}
    cores = os.cpu_count() or 1
    workers = max(1, min(workers or cores, len(todo)))
    spare = len(todo) < cores

    def one(f: ArtifactFile) -> str:
        return hash_file(f.abspath, progress, pipelined=spare and f.fingerprint.size >= _PIPE_MIN)

    if workers == 1:
        return {f.path: one(f) for f in todo}
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="iwl-hash", initializer=_yield_cpu) as pool:
        return {f.path: d for f, d in zip(todo, pool.map(one, todo), strict=True)}


def aggregate_sha256(hashes: Mapping[str, str]) -> str:
    """sha256 over the sorted ``"<sha>  <path>"`` lines joined by newlines, no trailing newline."""
    lines = sorted(f"{sha}  {path}".encode("utf-8", "surrogateescape") for path, sha in hashes.items())
    return hashlib.sha256(b"\n".join(lines)).hexdigest()


def content_address(abspath: str) -> str | None:
    """The sha256 a file's real name promises: a Hugging Face blob or an Ollama ``sha256-<hex>`` blob."""
    name = os.path.basename(os.path.realpath(abspath))
    if _HEX64.fullmatch(name):
        return name
    m = _OLLAMA_BLOB.fullmatch(name)
    return m.group(1) if m else None


def diff_files(recorded: Mapping[str, object], current: Mapping[str, object]) -> FileDiff:
    """Which paths differ, appeared or disappeared between two {path: sha256 or Fingerprint} maps."""
    return FileDiff(
        changed=tuple(sorted(p for p in recorded.keys() & current.keys() if recorded[p] != current[p])),
        added=tuple(sorted(current.keys() - recorded.keys())),
        removed=tuple(sorted(recorded.keys() - current.keys())),
    )
