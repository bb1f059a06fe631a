import pytest

from imageworks_loader.errors import MissingCapabilities, ModelNotFound, NoModelForRole
from imageworks_loader.schema import ModelEntry
from imageworks_loader.selection import endpoint_for, select_by_name, select_by_role
from imageworks_loader.store import Registry

from .helpers import entry


def reg(*entries):
    return Registry(path=None, entries=tuple(ModelEntry.model_validate(e) for e in entries))


@pytest.mark.parametrize("backend, cfg, url", [
    ("ollama", {}, "http://localhost:11434/v1"),
    ("vllm", {}, "http://localhost:8000/v1"),
    ("lmdeploy", {}, "http://localhost:23333/v1"),
    ("llamacpp", {}, "http://localhost:8080/v1"),
    ("llama.cpp", {}, "http://localhost:8080/v1"),
    ("something-else", {}, "http://localhost:8000/v1"),
    ("vllm", {"port": 24001}, "http://localhost:24001/v1"),
    ("ollama", {"host": "imageworks-ollama"}, "http://imageworks-ollama:11434/v1"),
    ("ollama", {"host": "https://gpu.example:443/v1/"}, "https://gpu.example:443/v1"),
    ("vllm", {"host": "x", "port": 1, "base_url": "http://proxy:9000/v1"}, "http://proxy:9000/v1"),
])
def test_endpoint_rules(backend, cfg, url):
    e = ModelEntry.model_validate({"name": "m", "backend": backend, "backend_config": cfg})
    assert endpoint_for(e) == url


def test_select_by_alias_returns_the_entry_and_internal_id():
    r = reg(entry("qwen", aliases=["Qwen/Qwen2.5-VL"], served_model_id="Qwen/Qwen2.5-VL", capabilities={"vl": True}))
    s = select_by_name(r, "Qwen/Qwen2.5-VL", ("vision",))
    assert (s.name, s.internal_model_id, s.capabilities["vision"]) == ("qwen", "Qwen/Qwen2.5-VL", True)


def test_select_names_every_missing_capability():
    r = reg(entry("t"))
    with pytest.raises(MissingCapabilities) as err:
        select_by_name(r, "t", ("vision", "tools", "embedding"))
    assert err.value.missing == ["embedding", "tools", "vision"]


def test_select_unknown_name():
    with pytest.raises(ModelNotFound):
        select_by_name(reg(entry("a")), "b")


ROLE_TABLE = [
    entry("zeta", roles=["r"], role_priority={"r": 5}),
    entry("alpha", roles=["r"], role_priority={"r": 5}),
    entry("best-but-deprecated", roles=["r"], role_priority={"r": 0}, deprecated=True),
    entry("no-prio-b", roles=["r"]),
    entry("no-prio-a", roles=["r"]),
    entry("vision-late", roles=["r"], role_priority={"r": 9}, capabilities={"vision": True}),
    entry("not-in-role", role_priority={"r": -1}),
]


def test_role_lowest_priority_wins_ties_by_name_deprecated_skipped():
    assert select_by_role(reg(*ROLE_TABLE), "r").name == "alpha"


def test_role_order_does_not_depend_on_file_order():
    answers = {select_by_role(reg(*ROLE_TABLE[i:], *ROLE_TABLE[:i]), "r").name for i in range(len(ROLE_TABLE))}
    assert answers == {"alpha"}


def test_role_unprioritised_come_after_in_name_order():
    r = reg(entry("no-prio-b", roles=["r"]), entry("no-prio-a", roles=["r"]))
    assert select_by_role(r, "r").name == "no-prio-a"


def test_role_with_capabilities_skips_candidates_that_lack_them():
    assert select_by_role(reg(*ROLE_TABLE), "r", ("vision",)).name == "vision-late"


def test_role_without_candidates_explains_each_rejection():
    with pytest.raises(NoModelForRole) as err:
        select_by_role(reg(*ROLE_TABLE), "r", ("audio",))
    rejected = dict(err.value.rejected)
    assert rejected["best-but-deprecated"] == "deprecated"
    assert rejected["alpha"] == "lacks audio"
    with pytest.raises(NoModelForRole, match="No entry lists this role"):
        select_by_role(reg(*ROLE_TABLE), "nobody")
