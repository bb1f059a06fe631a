import pytest
from pydantic import ValidationError

from imageworks_loader.schema import ModelEntry, name_problem


@pytest.mark.parametrize("name", [
    "qwen2.5vl_7b_(Q4_K_M)", "llama3.1-local:latest", "a", "x" * 128, "model+lora@v2", "A-b_c.d:e(f)",
])
def test_valid_names(name):
    assert name_problem(name) is None


@pytest.mark.parametrize("name, why", [
    ("", "empty"), (".hidden", "start with '.'"), ("../etc/passwd", "start with '.'"), ("a/b", "'/'"),
    ("a\\b", "'\\\\'"), ("x" * 129, "129 characters"), ("tab\there", "control"), ("sp ace", "' '"),
    ("semi;colon", "';'"), (None, "string"),
])
def test_invalid_names_say_why(name, why):
    assert why in (name_problem(name) or "")


def test_aliases_may_be_repo_ids_but_not_paths():
    assert name_problem("Qwen/Qwen2.5-VL-7B-Instruct-AWQ", alias=True) is None
    assert name_problem("../x", alias=True)
    assert name_problem("a/../b", alias=True)
    assert name_problem("/etc/passwd", alias=True)
    assert name_problem("a/b/c", alias=True)


def test_served_model_id_none_string_means_unset():
    e = ModelEntry.model_validate({"name": "m", "backend": "vllm", "served_model_id": "None"})
    assert e.internal_model_id == "m"
    e = ModelEntry.model_validate({"name": "m", "backend": "ollama", "served_model_id": "qwen2.5vl:7b"})
    assert e.internal_model_id == "qwen2.5vl:7b"


def test_entry_rejects_wrong_types_strictly():
    with pytest.raises(ValidationError):
        ModelEntry.model_validate({"name": "m", "backend": "vllm", "backend_config": {"port": "8000"}})
    with pytest.raises(ValidationError):
        ModelEntry.model_validate({"name": "m", "backend": "vllm", "version_lock": {"locked": "yes"}})
    with pytest.raises(ValidationError):
        ModelEntry.model_validate({"name": "m", "backend": "vllm", "artifacts": {"aggregate_sha256": "abc"}})


def test_nulls_for_containers_mean_defaults():
    e = ModelEntry.model_validate({"name": "m", "backend": "vllm", "roles": None, "probes": None,
                                   "capabilities": None, "artifacts": None})
    assert e.role_names == [] and e.vision_ok is None and e.config == {} and e.aliases == []
