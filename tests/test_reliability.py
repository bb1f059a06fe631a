"""Reliability under load, crashes and faults, with real processes, signals and file systems."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from imageworks_loader.errors import RegistryWriteError
from imageworks_loader.services import Loader
from imageworks_loader.store import RegistryStore

from .backend.reference import ReferenceBackend
from .conftest import ServerProcess
from .helpers import entry, write_registry

pytestmark = pytest.mark.slow

WORKER = textwrap.dedent("""
    import random, sys, time
    from imageworks_loader.services import Loader
    path, name, start = sys.argv[1], sys.argv[2], float(sys.argv[3])
    while time.time() < start:
        time.sleep(0.002)
    loader = Loader(path, lock_timeout=120)
    loader.verify(name)
    loader.lock(name)
    result = loader.probe_vision(name, timeout=60, rng=random.Random(name))
    assert result.outcome.value == "verified", result
    loader.unlock(name)
    loader.lock(name, set_expected=True)
""")


def test_fifty_processes_mixing_writes_while_the_server_reads(tmp_path):
    """50 processes verify, lock, probe, unlock and re-lock their own model, all at once, while the
    server answers reads and a reader re-parses the file continuously: every update lands and no
    reader ever sees a partial or invalid file."""
    names = [f"model-{i:02d}" for i in range(50)]
    with ReferenceBackend() as ref:
        entries = []
        for n in names:
            d = tmp_path / "models" / n
            d.mkdir(parents=True)
            for j in range(3):
                (d / f"part{j}.bin").write_bytes(os.urandom(2000 + j))
            entries.append(entry(n, model_path=str(d), base_url=ref.endpoint, served_model_id="ref-model",
                                 team={"owner": n}))
        path = write_registry(tmp_path / "model_registry.json", entries)
        server = ServerProcess(path)
        stop = threading.Event()
        reads = {"file": 0, "api": 0}
        problems: list[str] = []

        def reader() -> None:
            with server.client() as c:
                while not stop.is_set():
                    try:
                        data = json.loads(path.read_bytes())
                        assert [e["name"] for e in data] == names
                        reads["file"] += 1
                    except Exception as exc:
                        problems.append(f"file read: {exc!r}")
                    r = c.get("/v1/models")
                    if r.status_code != 200 or len(r.json()) != 50:
                        problems.append(f"api read: {r.status_code}")
                    reads["api"] += 1

        t = threading.Thread(target=reader)
        t.start()
        try:
            start = time.time() + 3
            procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(path), n, str(start)],
                                      stderr=subprocess.PIPE, text=True) for n in names]
            codes = [p.wait(300) for p in procs]
            errors = [p.stderr.read()[-500:] for p in procs if p.returncode]
            for p in procs:
                p.stderr.close()
        finally:
            stop.set()
            t.join()
        try:
            final_api = {m["name"]: m for m in server.client().get("/v1/models").json()}
        finally:
            server.stop()
    assert codes == [0] * 50, errors[:3]
    assert problems == []
    assert reads["file"] > 10 and reads["api"] > 10
    final = json.loads(path.read_text())
    for e in final:
        assert e["version_lock"]["locked"] is True, e["name"]
        assert e["version_lock"]["expected_aggregate_sha256"] == e["artifacts"]["aggregate_sha256"]
        assert len(e["artifacts"]["files"]) == 3
        assert e["probes"]["vision"]["vision_ok"] is True
        assert e["team"] == {"owner": e["name"]}
        assert final_api[e["name"]]["locked"] and final_api[e["name"]]["vision_ok"]
    loader = Loader(path)
    assert all(len(loader.state.probe_history(n)) == 1 for n in names)
    assert all(loader.select(name=n).locked for n in names)  # fingerprints recorded for every model


KILLED_WRITER = textwrap.dedent("""
    import sys
    from imageworks_loader.store import RegistryStore
    store = RegistryStore(sys.argv[1], lock_timeout=30)
    print("ready", flush=True)
    while True:
        def bump(raw):
            raw["metadata"]["n"] += 1
            raw["metadata"]["pad"] = "x" * (raw["metadata"]["n"] % 5000)
        store.update_entry("counter", bump)
""")


def test_writers_killed_mid_write_leave_old_or_new_file_and_no_stuck_lock(tmp_path):
    """SIGKILL a busy writer at random moments, many times: the registry always parses and validates,
    the counter never goes back, and the next writer gets the lock at once."""
    entries = [entry("counter", metadata={"n": 0, "pad": ""})] + [entry(f"filler-{i}") for i in range(2000)]
    path = write_registry(tmp_path / "model_registry.json", entries)
    rng = random.Random(42)
    last = 0
    kills = 40
    for _ in range(kills):
        p = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(path)], stdout=subprocess.PIPE, text=True)
        assert p.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.0, 0.25))
        p.send_signal(signal.SIGKILL)
        p.wait(10)
        p.stdout.close()
        store = RegistryStore(path, lock_timeout=2.0)
        registry = store.load()  # parses and validates: never a broken file
        n = json.loads(path.read_bytes())[0]["metadata"]["n"]
        assert n >= last
        last = n
        assert len(registry.entries) == 2001
        started = time.monotonic()
        store.update_entry("counter", lambda raw: raw["metadata"].update(n=raw["metadata"]["n"] + 1))
        assert time.monotonic() - started < 1.0  # the dead writer's lock was released by the kernel
        last += 1
        assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]  # leftovers swept under the lock
    assert last > kills  # the writers made progress between kills


def test_corrupt_registry_while_serving_degrades_then_heals(tmp_path, model_dir):
    path = write_registry(tmp_path / "model_registry.json", [entry("tiny", model_path=str(model_dir)), entry("b")])
    server = ServerProcess(path)
    try:
        with server.client() as c:
            assert c.get("/healthz").json()["status"] == "ok"
            good = path.read_text()
            path.write_text(good[: len(good) // 2])  # a truncated hand edit
            h = c.get("/healthz").json()
            assert h["status"] == "degraded" and "malformed JSON" in h["reason"]
            assert [m["name"] for m in c.get("/v1/models").json()] == ["b", "tiny"]
            assert c.post("/v1/select", json={"name": "tiny"}).status_code == 200
            r = c.post("/v1/verify", json={"name": "tiny"})
            assert r.status_code == 503 and r.json()["detail"]["error"] == "registry_invalid"
            assert path.read_text() == good[: len(good) // 2]  # never overwritten
            path.write_text(good)
            assert c.get("/healthz").json()["status"] == "ok"
            assert c.post("/v1/verify", json={"name": "tiny"}).status_code == 200
    finally:
        server.stop()


DISK_FULL = textwrap.dedent("""
    import json, os, sys
    from imageworks_loader.errors import RegistryWriteError
    from imageworks_loader.store import RegistryStore
    folder = sys.argv[1]
    path = os.path.join(folder, "model_registry.json")
    with open(path, "w") as f:
        json.dump([{"name": "a", "backend": "vllm", "metadata": {"blob": ""}}], f, indent=2)
    store = RegistryStore(path)
    store.update_entry("a", lambda raw: None)  # creates the lock file while there is room
    before = open(path, "rb").read()
    fd = os.open(os.path.join(folder, "filler"), os.O_WRONLY | os.O_CREAT)  # fill the file system
    try:
        while True:
            os.write(fd, b"0" * 4096)
    except OSError:
        pass
    os.close(fd)
    try:
        store.update_entry("a", lambda raw: raw["metadata"].update(blob="x" * 200_000))
        outcome = "written"
    except RegistryWriteError as exc:
        outcome = str(exc)
    print(json.dumps({"outcome": outcome, "intact": open(path, "rb").read() == before,
                      "temps": [n for n in os.listdir(folder) if n.endswith(".tmp")]}))
""")


def test_disk_full_is_a_clear_error_and_the_old_file_survives(tmp_path):
    """On a real, full file system (a small tmpfs in a private mount namespace)."""
    folder = tmp_path / "small"
    folder.mkdir()
    script = tmp_path / "disk_full.py"
    script.write_text(DISK_FULL)
    cmd = ["unshare", "-m", "sh", "-c",
           f"mount -t tmpfs -o size=256k tmpfs {folder} && exec {sys.executable} {script} {folder}"]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        pytest.skip("unshare is not installed")
    if r.returncode != 0 and ("Operation not permitted" in r.stderr or "permission denied" in r.stderr.lower()):
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert "the disk is full" in result["outcome"] and "previous file is intact" in result["outcome"]
    assert result["intact"] is True and result["temps"] == []


def test_backend_dying_mid_bench_records_nothing(tmp_path):
    from imageworks_loader.bench import BenchRequest
    from imageworks_loader.errors import BackendUnavailable

    from .backend.reference import Behaviour

    with ReferenceBackend(Behaviour(first_token_s=0, stream_break_after=3)) as ref:
        path = write_registry(tmp_path / "r.json", [entry("m", base_url=ref.endpoint, served_model_id="ref-model")])
        before = path.read_bytes()
        loader = Loader(path)
        with pytest.raises(BackendUnavailable, match="without"):
            loader.bench("m", BenchRequest(requests=3, max_tokens=10), timeout=5)
    assert path.read_bytes() == before
    assert loader.metrics("m").rolling_samples == 0


@pytest.mark.parametrize("mode", ["garbage", "hang", "error500"])
def test_backend_failing_mid_probe_is_unknown_and_records_nothing_in_the_registry(tmp_path, mode):
    from .backend.reference import Behaviour

    with ReferenceBackend(Behaviour(mode=mode, hang_s=3)) as ref:
        path = write_registry(tmp_path / "r.json", [entry("m", base_url=ref.endpoint, served_model_id="ref-model")])
        before = path.read_bytes()
        loader = Loader(path)
        started = time.monotonic()
        result = loader.probe_vision("m", timeout=0.5)
        assert time.monotonic() - started < 2.5
    assert result.outcome.value == "unknown"
    assert path.read_bytes() == before
    assert [p.outcome for p in loader.state.probe_history("m")] == ["unknown"]


def test_write_error_class_is_an_oserror():
    assert issubclass(RegistryWriteError, OSError)


def test_registry_reads_never_see_partial_files_under_rapid_writes(tmp_path):
    """A reader in another process re-reading as fast as it can while this process writes 200 times."""
    path = write_registry(tmp_path / "r.json", [entry("a", metadata={"n": 0})] + [entry(f"f{i}") for i in range(300)])
    reader = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import json, sys, time
        bad = 0; n = 0
        end = time.time() + 60
        while time.time() < end:
            try:
                data = json.loads(open({str(path)!r}, "rb").read())
                assert len(data) == 301
                n += 1
                if data[0]["metadata"]["n"] >= 200:
                    break
            except Exception:
                bad += 1
        print(n, bad)
    """)], stdout=subprocess.PIPE, text=True)
    store = RegistryStore(path)
    for _ in range(200):
        store.update_entry("a", lambda raw: raw["metadata"].update(n=raw["metadata"]["n"] + 1))
    out, _ = reader.communicate(timeout=90)
    reads, bad = map(int, out.split())
    assert bad == 0 and reads > 50


def test_api_stays_up_when_the_registry_file_disappears(tmp_path):
    path = write_registry(tmp_path / "r.json", [entry("a")])
    server = ServerProcess(path)
    try:
        with server.client() as c:
            assert c.get("/v1/models").status_code == 200
            moved = path.with_suffix(".bak")
            path.rename(moved)
            h = c.get("/healthz").json()
            assert h["status"] == "degraded" and "not found" in h["reason"].lower()
            assert c.get("/v1/models").json()[0]["name"] == "a"
            moved.rename(path)
            assert c.get("/healthz").json()["status"] == "ok"
    finally:
        server.stop()


def test_lock_timeout_when_a_live_process_holds_the_lock(tmp_path):
    path = write_registry(tmp_path / "r.json", [entry("a")])
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import time
        from imageworks_loader.store import RegistryStore
        with RegistryStore({str(path)!r}).locked():
            print("held", flush=True)
            time.sleep(30)
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        r = subprocess.run([sys.executable, "-m", "imageworks_loader", "--registry", str(path), "lock", "a"],
                           capture_output=True, text=True, env={**os.environ, "IMAGEWORKS_LOCK_TIMEOUT": "0.5"})
        assert r.returncode == 1 and "Timed out after 0.5s waiting for the registry lock" in r.stderr
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        r = subprocess.run([sys.executable, "-m", "imageworks_loader", "--registry", str(path), "lock", "a"],
                           capture_output=True, text=True, env={**os.environ, "IMAGEWORKS_LOCK_TIMEOUT": "2"})
        assert r.returncode == 0, r.stderr
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.stdout.close()
