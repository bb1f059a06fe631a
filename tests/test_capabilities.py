import pytest

from imageworks_loader.capabilities import (
    CANONICAL,
    canonical_name,
    missing_capabilities,
    normalise_capabilities,
    parse_required,
)
from imageworks_loader.errors import UnknownCapability


@pytest.mark.parametrize("given, canon", [
    ("vision", "vision"), ("VISION", "vision"), ("image", "vision"), ("Multimodal", "vision"), ("vl", "vision"),
    ("function_calling", "tools"), ("function-calling", "tools"), ("tool_use", "tools"), ("Tools", "tools"),
    ("reasoning", "thinking"), ("chain_of_thought", "thinking"), ("embed", "embedding"),
    ("text-embedding", "embedding"), ("speech", "audio"), ("chat", "text"), ("rerank", None), ("o1", None),
])
def test_canonical_name_accepts_synonyms_in_any_case(given, canon):
    assert canonical_name(given) == canon


def test_normalise_outputs_only_canonical_names_with_text_default_true():
    caps = normalise_capabilities({"image": True, "function_calling": True, "o1": False, "deepseek": True})
    assert list(caps) == list(CANONICAL)
    assert caps == {"text": True, "vision": True, "audio": False, "embedding": False, "tools": True, "thinking": False}


def test_explicit_canonical_key_wins_over_synonyms():
    # imageworks writes every synonym; an explicit canonical false is authoritative.
    assert normalise_capabilities({"vision": False, "vl": True})["vision"] is False
    assert normalise_capabilities({"text": False})["text"] is False
    assert normalise_capabilities({})["text"] is True
    assert normalise_capabilities(None)["text"] is True


def test_parse_required_canonicalises_dedupes_and_names_every_unknown():
    assert parse_required(["image", "VISION", "function_calling"]) == ("vision", "tools")
    with pytest.raises(UnknownCapability) as err:
        parse_required(["vision", "rerank", "telepathy"])
    assert "rerank" in str(err.value) and "telepathy" in str(err.value)
    assert "Known:" in str(err.value)


def test_missing_capabilities_lists_all_gaps_in_order():
    caps = normalise_capabilities({"text": True})
    assert missing_capabilities(caps, ("vision", "tools")) == ["vision", "tools"]
