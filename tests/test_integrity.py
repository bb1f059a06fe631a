import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from imageworks_loader import integrity
from imageworks_loader.integrity import (
    aggregate_sha256,
    content_address,
    diff_files,
    hash_file,
    hash_files,
    scan_artifacts,
)

CHUNK = integrity._CHUNK

# The README's coreutils recipe, verbatim: the aggregate must be reproducible without this tool.
COREUTILS_RECIPE = (
    "find -L . -type f -not -path '*/.git/*' -not -path '*/.cache/*' -printf '%P\\0' "
    "| xargs -0 sha256sum | LC_ALL=C sort | head -c -1 | sha256sum"
)


def coreutils_aggregate(folder: Path) -> str:
    out = subprocess.run(["bash", "-c", COREUTILS_RECIPE], cwd=folder, capture_output=True, text=True, check=True)
    return out.stdout.split()[0]


def loader_aggregate(folder: Path) -> str:
    files, _ = scan_artifacts(folder)
    return aggregate_sha256(hash_files(files))


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 7])
def test_hash_file_matches_hashlib_on_awkward_sizes(tmp_path, size):
    data = os.urandom(size)
    p = tmp_path / "f.bin"
    p.write_bytes(data)
    assert hash_file(p) == hashlib.sha256(data).hexdigest()


def test_aggregate_matches_the_coreutils_recipe(tmp_path):
    d = tmp_path / "m"
    (d / "sub dir").mkdir(parents=True)
    for name, size in [("empty", 0), ("one", 1), ("chunk", CHUNK), ("chunk+1", CHUNK + 1),
                       ("sub dir/naïve é.json", 10), ("Zeta", 5), ("alpha", 5)]:
        (d / name).write_bytes(os.urandom(size))
    (d / ".git").mkdir()
    (d / ".git" / "HEAD").write_text("ref: main")
    (d / ".cache").mkdir()
    (d / ".cache" / "x").write_text("skip me")
    assert loader_aggregate(d) == coreutils_aggregate(d)


def test_aggregate_formula_is_sorted_lines_without_trailing_newline():
    hashes = {"b.txt": "b" * 64, "a.txt": "a" * 64}
    expected = hashlib.sha256(f"{'a' * 64}  a.txt\n{'b' * 64}  b.txt".encode()).hexdigest()
    assert aggregate_sha256(hashes) == expected


def test_scan_skips_git_and_cache_and_sorts_posix_paths(tmp_path):
    d = tmp_path / "m"
    (d / "b").mkdir(parents=True)
    (d / "b" / "x").write_text("1")
    (d / "a").write_text("2")
    (d / ".git").mkdir()
    (d / ".git" / "config").write_text("3")
    (d / "b" / ".cache").mkdir()
    (d / "b" / ".cache" / "y").write_text("4")
    files, dangling = scan_artifacts(d)
    assert [f.path for f in files] == ["a", "b/x"] and dangling == []


def test_hugging_face_snapshot_is_hashed_through_symlinks(tmp_path):
    data = os.urandom(5000)
    sha = hashlib.sha256(data).hexdigest()
    blobs = tmp_path / "models--org--m" / "blobs"
    snap = tmp_path / "models--org--m" / "snapshots" / "abc123"
    blobs.mkdir(parents=True)
    snap.mkdir(parents=True)
    (blobs / sha).write_bytes(data)
    (snap / "model.safetensors").symlink_to(os.path.relpath(blobs / sha, snap))
    files, _ = scan_artifacts(snap)
    assert [f.path for f in files] == ["model.safetensors"]
    assert hash_files(files) == {"model.safetensors": sha}
    assert content_address(files[0].abspath) == sha
    assert loader_aggregate(snap) == coreutils_aggregate(snap)


def test_content_address_of_ollama_blob_and_plain_file(tmp_path):
    blob = tmp_path / ("sha256-" + "a" * 64)
    blob.write_text("x")
    assert content_address(str(blob)) == "a" * 64
    plain = tmp_path / "model.gguf"
    plain.write_text("x")
    assert content_address(str(plain)) is None


def test_symlink_loops_and_dangling_links_do_not_hang(tmp_path):
    d = tmp_path / "m"
    d.mkdir()
    (d / "f").write_text("x")
    (d / "loop").symlink_to(d)
    (d / "dead").symlink_to(tmp_path / "missing")
    files, dangling = scan_artifacts(d)
    assert [f.path for f in files] == ["f"]
    assert dangling == ["dead"]


def test_single_file_model_path(tmp_path):
    f = tmp_path / "model.gguf"
    f.write_bytes(b"GGUF")
    files, _ = scan_artifacts(f)
    assert [x.path for x in files] == ["model.gguf"]


def test_diff_names_changed_added_removed():
    d = diff_files({"a": "1", "b": "2", "c": "3"}, {"a": "1", "b": "9", "d": "4"})
    assert (d.changed, d.added, d.removed) == (("b",), ("d",), ("c",))
    assert not diff_files({"a": "1"}, {"a": "1"})


def test_parallel_hashing_equals_serial(tmp_path):
    files = []
    for i in range(7):
        (tmp_path / f"f{i}").write_bytes(os.urandom(100_000 * i))
    files, _ = scan_artifacts(tmp_path)
    assert hash_files(files, workers=4) == hash_files(files, workers=1)


@pytest.mark.parametrize("size", [0, 1, integrity._PIPE_CHUNK - 1, integrity._PIPE_CHUNK, integrity._PIPE_CHUNK + 1,
                                  5 * integrity._PIPE_CHUNK + 3])
def test_pipelined_hash_matches_hashlib_on_awkward_sizes(tmp_path, size):
    data = os.urandom(size)
    p = tmp_path / "f.bin"
    p.write_bytes(data)
    assert hash_file(p, pipelined=True) == hashlib.sha256(data).hexdigest()


def test_pipelined_reader_stops_when_the_consumer_fails(tmp_path):
    import threading

    p = tmp_path / "f.bin"
    p.write_bytes(os.urandom(10 * integrity._PIPE_CHUNK))

    def boom(n):
        raise KeyboardInterrupt

    before = threading.active_count()
    with pytest.raises(KeyboardInterrupt):
        hash_file(p, boom, pipelined=True)
    assert threading.active_count() == before


def test_progress_reports_every_byte(tmp_path):
    p = tmp_path / "f.bin"
    p.write_bytes(os.urandom(3 * integrity._PIPE_CHUNK + 5))
    for pipelined in (False, True):
        seen = []
        hash_file(p, seen.append, pipelined=pipelined)
        assert sum(seen) == 3 * integrity._PIPE_CHUNK + 5
