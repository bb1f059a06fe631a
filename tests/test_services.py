import json
import os
import time

import pytest

from imageworks_loader.errors import (
    ArtifactsMissing,
    CorruptArtifact,
    InvalidName,
    LockViolation,
    MissingCapabilities,
    ModelNotFound,
)
from imageworks_loader.integrity import aggregate_sha256, hash_file
from imageworks_loader.services import Loader

from .helpers import entry, write_registry


def raw_entry(path, name):
    return next(e for e in json.loads(path.read_text()) if e["name"] == name)


def test_verify_records_hashes_aggregate_and_last_verified(loader, registry_path, model_dir):
    result = loader.verify("tiny")
    e = raw_entry(registry_path, "tiny")
    files = {f["path"]: f["sha256"] for f in e["artifacts"]["files"]}
    assert sorted(files) == ["config.json", "model-00001-of-00002.safetensors",
                             "model-00002-of-00002.safetensors", "tokenizer/tokenizer.json"]
    assert files["config.json"] == hash_file(model_dir / "config.json")
    assert e["artifacts"]["aggregate_sha256"] == result.aggregate_sha256 == aggregate_sha256(files)
    assert e["version_lock"]["last_verified"].startswith(time.strftime("%Y-"))
    aggregate, fps = loader.state.verified("tiny")
    assert aggregate == result.aggregate_sha256 and len(fps) == 4


def test_verify_by_alias_records_on_the_entry(loader, registry_path):
    assert loader.verify("tiny-alias").name == "tiny"


def test_lock_set_expected_then_select_then_drift_is_refused_without_hashing(loader, registry_path, model_dir,
                                                                             monkeypatch):
    lock = loader.lock("tiny", set_expected=True)
    assert lock.locked and lock.expected_aggregate_sha256 == raw_entry(registry_path, "tiny")["artifacts"]["aggregate_sha256"]
    assert loader.select(name="tiny").locked

    import imageworks_loader.integrity as integrity

    def no_hashing(*a, **k):
        raise AssertionError("select must never hash")

    monkeypatch.setattr(integrity, "hash_file", no_hashing)
    (model_dir / "config.json").write_text('{"hidden_size": 65}\n')
    (model_dir / "extra.bin").write_bytes(b"x")
    (model_dir / "tokenizer" / "tokenizer.json").unlink()
    with pytest.raises(LockViolation) as err:
        loader.select(name="tiny")
    assert err.value.changed == ["config.json"]
    assert err.value.added == ["extra.bin"]
    assert err.value.removed == ["tokenizer/tokenizer.json"]
    assert "run 'imageworks-loader verify tiny'" in str(err.value).lower()


def test_touching_a_file_without_changing_bytes_needs_a_verify_which_then_passes(loader, model_dir):
    loader.lock("tiny", set_expected=True)
    os.utime(model_dir / "config.json", ns=(1, 1))
    with pytest.raises(LockViolation):
        loader.select(name="tiny")
    loader.verify("tiny")  # same bytes: matches the lock, records new fingerprints
    assert loader.select(name="tiny").name == "tiny"


def test_verify_of_locked_model_with_changed_files_reports_the_diff_and_records_nothing(
        loader, registry_path, model_dir):
    loader.lock("tiny", set_expected=True)
    before = raw_entry(registry_path, "tiny")
    (model_dir / "model-00002-of-00002.safetensors").write_bytes(b"tampered")
    (model_dir / "new.txt").write_text("hi")
    (model_dir / "config.json").unlink()
    with pytest.raises(LockViolation) as err:
        loader.verify("tiny")
    assert err.value.changed == ["model-00002-of-00002.safetensors"]
    assert err.value.added == ["new.txt"] and err.value.removed == ["config.json"]
    assert err.value.expected == before["version_lock"]["expected_aggregate_sha256"]
    assert raw_entry(registry_path, "tiny") == before
    with pytest.raises(LockViolation):
        loader.select(name="tiny")


def test_unlock_keeps_expected_and_allows_drift(loader, registry_path, model_dir):
    expected = loader.lock("tiny", set_expected=True).expected_aggregate_sha256
    res = loader.unlock("tiny")
    assert not res.locked and res.expected_aggregate_sha256 == expected
    (model_dir / "config.json").write_text("changed")
    assert loader.select(name="tiny").name == "tiny"
    v = loader.verify("tiny")
    assert v.changes["changed"] == ["config.json"]
    assert raw_entry(registry_path, "tiny")["version_lock"]["expected_aggregate_sha256"] == expected


def test_locked_but_never_verified_is_refused(loader):
    loader.lock("tiny")
    with pytest.raises(LockViolation, match="not been verified"):
        loader.select(name="tiny")


def test_expected_hash_edited_by_hand_is_refused_until_verify(loader, registry_path):
    loader.lock("tiny", set_expected=True)
    raw = json.loads(registry_path.read_text())
    raw[0]["version_lock"]["expected_aggregate_sha256"] = "0" * 64
    registry_path.write_text(json.dumps(raw))
    with pytest.raises(LockViolation, match="expected hash"):
        loader.select(name="tiny")
    with pytest.raises(LockViolation):
        loader.verify("tiny")


def test_missing_model_path_is_a_clear_error(tmp_path):
    path = write_registry(tmp_path / "r.json", [
        entry("nopath"), entry("gone", model_path=str(tmp_path / "missing")),
        entry("ollama", model_path="ollama:/qwen2.5vl:7b"), entry("empty", model_path=str(tmp_path)),
    ])
    loader = Loader(path)
    with pytest.raises(ArtifactsMissing, match="model_path is not set"):
        loader.verify("nopath")
    with pytest.raises(ArtifactsMissing, match="does not exist"):
        loader.verify("gone")
    with pytest.raises(ArtifactsMissing, match="not a local folder"):
        loader.verify("ollama")
    (tmp_path / "r.json.lock").unlink(missing_ok=True)


def test_corrupt_hugging_face_blob_is_reported(tmp_path):
    import hashlib

    blobs, snap = tmp_path / "blobs", tmp_path / "snap"
    blobs.mkdir()
    snap.mkdir()
    good = b"good weights"
    claimed = hashlib.sha256(good).hexdigest()
    (blobs / claimed).write_bytes(b"bit-rotted weights")
    (snap / "model.safetensors").symlink_to(blobs / claimed)
    path = write_registry(tmp_path / "r.json", [entry("hf", model_path=str(snap))])
    with pytest.raises(CorruptArtifact) as err:
        Loader(path).verify("hf")
    assert "model.safetensors: expected sha256 " + claimed in str(err.value)
    assert json.loads(path.read_text())[0].get("artifacts") is None


def test_relative_model_path_is_relative_to_the_registry(tmp_path, model_dir):
    path = write_registry(tmp_path / "configs" / "r.json", [entry("rel", model_path="../models/tiny")])
    assert Loader(path).verify("rel").files == 4


def test_select_checks_capabilities_and_names(loader):
    with pytest.raises(MissingCapabilities):
        loader.select(name="tiny", require=["vision"])
    with pytest.raises(ModelNotFound):
        loader.select(name="tinyy")
    with pytest.raises(InvalidName):
        loader.select(name="../etc/passwd")
    with pytest.raises(InvalidName):
        loader.select(name="")
    assert loader.select(role="caption", require=["vision"]).name == "vision-a"


def test_list_sorted_and_filtered(loader):
    assert [m.name for m in loader.list_models()] == ["old", "tiny", "vision-a", "vision-b"]
    assert [m.name for m in loader.list_models("keywords")] == ["old", "tiny", "vision-a"]


def test_replace_rebaselines_a_locked_model_deliberately(loader, registry_path, model_dir):
    old = loader.lock("tiny", set_expected=True).expected_aggregate_sha256
    (model_dir / "config.json").write_text("new weights config")
    with pytest.raises(LockViolation, match="--set-expected --replace"):
        loader.verify("tiny")
    assert loader.lock("tiny", set_expected=True).expected_aggregate_sha256 == old  # not replaced silently
    new = loader.lock("tiny", set_expected=True, replace=True)
    assert new.locked and new.expected_aggregate_sha256 != old
    assert loader.select(name="tiny").name == "tiny"


def test_did_you_mean_includes_aliases(loader):
    with pytest.raises(ModelNotFound) as err:
        loader.select(name="tiny-alas")
    assert "tiny-alias" in err.value.suggestions
