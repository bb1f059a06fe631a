import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from imageworks_loader.errors import (
    LockTimeout,
    ModelNotFound,
    RegistryInvalid,
    RegistryNotFound,
    RegistryWriteError,
)
from imageworks_loader.store import RegistryStore

from .helpers import entry, write_registry

REAL_IMAGEWORKS_ENTRY = {
    "name": "qwen2.5vl_7b_(Q4_K_M)",
    "display_name": "qwen2.5vl 7b (Q4 K M)",
    "backend": "ollama",
    "backend_config": {"port": 11434, "model_path": "ollama:/qwen2.5vl:7b", "extra_args": [], "host": "imageworks-ollama"},
    "capabilities": {"text": True, "vision": True, "embedding": False, "visual": True, "o1": False, "tool-use": False},
    "generation_defaults": {"temperature": 0.55, "top_p": 0.9, "top_k": 20},
    "artifacts": {"aggregate_sha256": "", "files": []},
    "chat_template": {"source": "embedded", "path": None, "sha256": None},
    "version_lock": {"locked": False, "expected_aggregate_sha256": None, "last_verified": None},
    "performance": {"rolling_samples": 0, "ttft_ms_avg": None, "throughput_toks_per_s_avg": None, "last_sample": None},
    "probes": {"vision": None},
    "profiles_placeholder": None,
    "metadata": {"ollama_family": "qwen25vl", "ollama_capabilities": ["completion", "vision"]},
    "served_model_id": "None",
    "model_aliases": ["Qwen/Qwen2.5-VL-7B"],
    "roles": [],
    "license": None,
    "deprecated": False,
    "role_priority": {},
    "download_size_bytes": 13437642208,
    "downloaded_at": "2025-10-30T22:31:34.990500+00:00",
}


def test_reads_real_imageworks_entry_and_round_trips_unknown_fields_and_key_order(tmp_path):
    path = write_registry(tmp_path / "r.json", [REAL_IMAGEWORKS_ENTRY, entry("other")])
    store = RegistryStore(path)
    assert store.load().get("qwen2.5vl_7b_(Q4_K_M)").backend == "ollama"

    def touch(raw):
        raw["version_lock"]["locked"] = True

    store.update_entry("qwen2.5vl_7b_(Q4_K_M)", touch)
    after = json.loads(path.read_text())
    expected = json.loads(json.dumps(REAL_IMAGEWORKS_ENTRY))
    expected["version_lock"]["locked"] = True
    assert after[0] == expected
    assert list(after[0]) == list(REAL_IMAGEWORKS_ENTRY)  # key order kept
    assert list(after[0]["capabilities"]) == list(REAL_IMAGEWORKS_ENTRY["capabilities"])
    assert after[0]["download_size_bytes"] == 13437642208


def test_missing_file_says_how_to_point_at_one(tmp_path):
    with pytest.raises(RegistryNotFound, match="IMAGEWORKS_REGISTRY"):
        RegistryStore(tmp_path / "nope.json").load()


def test_malformed_json_names_file_line_and_column(tmp_path):
    path = tmp_path / "r.json"
    path.write_text('[\n  {"name": "a", "backend": "vllm"},\n  {"name": "b" "backend": "vllm"}\n]\n')
    with pytest.raises(RegistryInvalid) as err:
        RegistryStore(path).load()
    msg = str(err.value)
    assert str(path) in msg and "line 3" in msg and "column 16" in msg


def test_every_bad_entry_is_named_by_index_name_and_field(tmp_path):
    path = write_registry(tmp_path / "r.json", [
        entry("good"),
        {**entry("bad-port"), "backend_config": {"port": 99999}},
        {**entry("bad-lock"), "version_lock": {"locked": "yes"}},
        {"backend": "vllm"},
        "not an object",
        entry("../escape"),
    ])
    with pytest.raises(RegistryInvalid) as err:
        RegistryStore(path).load()
    problems = err.value.problems
    text = "\n".join(problems)
    assert "entry 1 ('bad-port'): field backend_config.port" in text
    assert "entry 2 ('bad-lock'): field version_lock.locked" in text
    assert "entry 3: field name: Field required" in text
    assert "entry 4: must be a JSON object" in text
    assert "entry 5 ('../escape'): field name" in text
    assert len(problems) == 5


def test_duplicate_names_and_aliases_name_both_entries(tmp_path):
    path = write_registry(tmp_path / "r.json", [
        entry("a"), entry("b", aliases=["a-alias"]), entry("a"), entry("c", aliases=["b"]),
    ])
    with pytest.raises(RegistryInvalid) as err:
        RegistryStore(path).load()
    text = "\n".join(err.value.problems)
    assert "duplicate name 'a': entries 0 and 2" in text
    assert "alias 'b' of entry 3 ('c') is already the name or an alias of entry 1 ('b')" in text


def test_invalid_registry_is_never_rewritten(tmp_path):
    path = tmp_path / "r.json"
    original = '[{"name": "a", "backend": "vllm"}, {"name": "a", "backend": "vllm"}]'
    path.write_text(original)
    store = RegistryStore(path)
    with pytest.raises(RegistryInvalid):
        with store.edit() as raw:
            raw.clear()
    with pytest.raises(RegistryInvalid):
        store.update_entry("a", lambda raw: raw.update(deprecated=True))
    assert path.read_text() == original


def test_write_that_would_break_the_registry_is_refused(tmp_path):
    path = write_registry(tmp_path / "r.json", [entry("a"), entry("b")])
    before = path.read_bytes()
    store = RegistryStore(path)
    with pytest.raises(RegistryInvalid):
        store.update_entry("a", lambda raw: raw.update(name="b"))
    with pytest.raises(RegistryInvalid):
        store.update_entry("a", lambda raw: raw.update(backend_config={"port": "x"}))
    assert path.read_bytes() == before


def test_hand_edits_are_seen_without_restart(tmp_path):
    path = write_registry(tmp_path / "r.json", [entry("a")])
    store = RegistryStore(path)
    assert [e.name for e in store.load().entries] == ["a"]
    write_registry(path, [entry("a"), entry("b")])
    assert [e.name for e in store.load().entries] == ["a", "b"]
    first = store.load()
    assert store.load() is first  # unchanged file: no re-parse


def test_last_good_copy_is_kept_when_the_file_breaks(tmp_path):
    path = write_registry(tmp_path / "r.json", [entry("a")])
    store = RegistryStore(path)
    store.load()
    path.write_text("[{")
    registry, stale = store.load_or_last_good()
    assert [e.name for e in registry.entries] == ["a"] and isinstance(stale, RegistryInvalid)
    write_registry(path, [entry("a"), entry("c")])
    registry, stale = store.load_or_last_good()
    assert stale is None and len(registry.entries) == 2


def test_unknown_model_suggests_close_names(tmp_path):
    path = write_registry(tmp_path / "r.json", [entry("qwen2.5-vl-7b"), entry("llama3")])
    with pytest.raises(ModelNotFound) as err:
        RegistryStore(path).load().get("qwen2.5-vl-7")
    assert err.value.suggestions == ["qwen2.5-vl-7b"]
    assert "Did you mean 'qwen2.5-vl-7b'?" in str(err.value)


def test_atomic_write_leaves_no_temp_files_and_keeps_mode(tmp_path):
    path = write_registry(tmp_path / "r.json", [entry("a")])
    os.chmod(path, 0o640)
    RegistryStore(path).update_entry("a", lambda raw: raw.update(deprecated=True))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json", "r.json.lock"]
    assert (path.stat().st_mode & 0o777) == 0o640


def _make_read_only(folder: Path) -> None:
    # Root ignores permission bits, so as root use the immutable attribute (ext4) instead.
    if os.geteuid() == 0:
        subprocess.run(["chattr", "+i", str(folder)], check=True)
    else:
        os.chmod(folder, 0o555)


def _make_writable(folder: Path) -> None:
    if os.geteuid() == 0:
        subprocess.run(["chattr", "-i", str(folder)], check=True)
    else:
        os.chmod(folder, 0o755)


def test_read_only_folder_is_a_clear_error_and_keeps_the_file(tmp_path):
    folder = tmp_path / "ro"
    path = write_registry(folder / "r.json", [entry("a")])
    RegistryStore(path).update_entry("a", lambda raw: None)  # lock file exists, as after any write
    before = path.read_bytes()
    _make_read_only(folder)
    try:
        with pytest.raises(RegistryWriteError, match="permission denied|read-only"):
            RegistryStore(path).update_entry("a", lambda raw: raw.update(deprecated=True))
    finally:
        _make_writable(folder)
    assert path.read_bytes() == before


def test_lock_timeout_names_the_lock_file(tmp_path):
    path = write_registry(tmp_path / "r.json", [entry("a")])
    holder = RegistryStore(path)
    waiter = RegistryStore(path, lock_timeout=0.2)
    with holder.locked():
        with pytest.raises(LockTimeout, match=r"r\.json\.lock"):
            waiter.update_entry("a", lambda raw: None)


WRITER = textwrap.dedent("""
    import sys, time
    from imageworks_loader.services import Loader
    path, name, start = sys.argv[1], sys.argv[2], float(sys.argv[3])
    while time.time() < start:
        time.sleep(0.001)
    Loader(path, lock_timeout=60).lock(name)
    Loader(path, lock_timeout=60).unlock(name)
    Loader(path, lock_timeout=60).lock(name)
""")


def test_twenty_processes_locking_different_models_lose_nothing(tmp_path):
    import time

    names = [f"model-{i:02d}" for i in range(20)]
    path = write_registry(tmp_path / "r.json", [entry(n, note={"keep": n}) for n in names])
    start = time.time() + 1.5
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), n, str(start)]) for n in names]
    assert [p.wait(120) for p in procs] == [0] * 20
    final = json.loads(path.read_text())
    assert [e["name"] for e in final] == names
    assert all(e["version_lock"]["locked"] is True for e in final)
    assert all(e["note"] == {"keep": e["name"]} for e in final)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_disk_full_during_write_is_a_clear_error_and_keeps_the_file(tmp_path, monkeypatch):
    import errno

    path = write_registry(tmp_path / "r.json", [entry("a")])
    before = path.read_bytes()

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(RegistryWriteError, match="the disk is full"):
        RegistryStore(path).update_entry("a", lambda raw: raw.update(deprecated=True))
    assert path.read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_serialisation_matches_the_stdlib_layout_and_values():
    from imageworks_loader.store import serialise_registry

    raw = [{"name": "ünïcode-é", "x": [1, 2.5, 1e20, None, True, {"k": "v\n\"q\""}], "big": 2**70, "e": {}, "l": []}]
    assert serialise_registry(raw) == (json.dumps(raw, indent=2, ensure_ascii=False) + "\n").encode()
    raw[0].pop("big")  # the fast path
    assert serialise_registry(raw) == (json.dumps(raw, indent=2, ensure_ascii=False) + "\n").encode()
    raw[0]["tiny"] = 1e-05  # orjson writes 0.00001: same value, shortest plain form
    assert json.loads(serialise_registry(raw)) == raw


def test_lenient_json_values_still_load(tmp_path):
    path = tmp_path / "r.json"
    path.write_text('[{"name": "a", "backend": "vllm", "metadata": {"score": NaN, "huge": 123456789012345678901234567890}}]')
    store = RegistryStore(path)
    assert store.load().get("a").backend == "vllm"
    store.update_entry("a", lambda raw: raw.update(deprecated=True))
    assert "123456789012345678901234567890" in path.read_text()


def test_bad_sha_is_explained(tmp_path):
    path = write_registry(tmp_path / "r.json", [{**entry("a"), "artifacts": {"aggregate_sha256": "xyz", "files": []}}])
    with pytest.raises(RegistryInvalid, match="64 lowercase hex digits"):
        RegistryStore(path).load()
