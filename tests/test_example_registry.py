"""The shipped example registry: it loads, it has what the README promises, and it survives writes."""

import json
import shutil
from pathlib import Path

from imageworks_loader.services import Loader

EXAMPLE = Path(__file__).resolve().parents[1] / "configs"


def test_example_registry_has_the_promised_entries():
    loader = Loader(EXAMPLE / "model_registry.json")
    entries = {e.name: e for e in loader.registry().entries}
    backends = {e.backend for e in entries.values()}
    assert {"vllm", "ollama"} <= backends
    assert any(e.backend == "vllm" and e.caps["vision"] for e in entries.values())
    assert any(e.backend == "ollama" and ":" in e.internal_model_id for e in entries.values())
    assert any(not e.caps["vision"] and e.priorities and e.role_names for e in entries.values())
    assert any(e.is_deprecated for e in entries.values())
    raw = json.loads((EXAMPLE / "model_registry.json").read_text())
    known = {"name", "display_name", "backend", "backend_config", "served_model_id", "model_aliases", "capabilities",
             "roles", "role_priority", "deprecated", "artifacts", "version_lock", "probes", "performance",
             "generation_defaults", "metadata"}
    assert any(set(e) - known for e in raw)


def test_unknown_fields_survive_every_kind_of_write(tmp_path):
    shutil.copytree(EXAMPLE, tmp_path / "configs")
    path = tmp_path / "configs" / "model_registry.json"
    before = json.loads(path.read_text())
    loader = Loader(path)
    loader.verify("tiny")
    loader.lock("tiny-captioner", set_expected=True)
    loader.unlock("tiny")
    loader.lock("tiny", set_expected=True, replace=True)
    after = json.loads(path.read_text())
    for old, new in zip(before, after, strict=True):
        if old["name"] != "tiny-captioner":
            assert new == old  # untouched entries: identical, key order included
            assert list(new) == list(old)
        else:
            changed = {k for k in set(old) | set(new) if old.get(k) != new.get(k)}
            assert changed == {"artifacts", "version_lock"}
            assert list(new)[: len(old)] == list(old)
