"""The capability vocabulary: canonical names, the synonyms accepted on input, normalisation.

Registries written by imageworks carry many synonym keys side by side (``vision``, ``vl``, ``image``,
``multimodal``...). The canonical key, when present, is authoritative; synonyms only fill in a
canonical key that is absent. Output always uses the canonical names, and ``text`` defaults to true.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from .errors import UnknownCapability

__all__ = [
    "CANONICAL",
    "SYNONYMS",
    "canonical_name",
    "missing_capabilities",
    "normalise_capabilities",
    "parse_required",
]

#: Canonical capability names, in display order.
CANONICAL: tuple[str, ...] = ("text", "vision", "audio", "embedding", "tools", "thinking")

# Keys are compared after lower-casing and removing '-', '_', ' ' (so "tool-use" == "tool_use").
SYNONYMS: dict[str, tuple[str, ...]] = {
    "text": ("text", "language", "chat", "llm", "completion", "generate"),
    "vision": ("vision", "image", "images", "multimodal", "vl", "visual", "mm", "vlm", "imageinput"),
    "audio": ("audio", "speech", "voice", "asr", "sound"),
    "embedding": ("embedding", "embeddings", "embed", "textembedding", "representation"),
    "tools": (
        "tools", "tool", "tooluse", "toolcall", "toolcalls", "toolchoice", "autotoolchoice",
        "functioncall", "functioncalls", "functioncalling", "functiontools", "toolcalling", "functions",
    ),
    "thinking": ("thinking", "think", "reasoning", "reason", "reasoner", "chainofthought", "cot"),
}

_LOOKUP: dict[str, str] = {syn: canon for canon, syns in SYNONYMS.items() for syn in syns}
_FOLD = re.compile(r"[-_\s]+")


def _fold(name: str) -> str:
    return _FOLD.sub("", name.strip().lower())


def canonical_name(name: str) -> str | None:
    """The canonical name for ``name`` (any case, any synonym), or None if it is not a capability."""
    return _LOOKUP.get(_fold(name))


def normalise_capabilities(raw: Mapping[str, object] | None) -> dict[str, bool]:
    """Map a registry ``capabilities`` object to ``{canonical: bool}`` for every canonical name.

    An explicit canonical key wins over its synonyms; otherwise any true synonym makes it true.
    Keys that are not capabilities (``o1``, ``deepseek``...) are ignored here and kept in the file.
    """
    explicit: dict[str, bool] = {}
    from_synonyms: dict[str, bool] = {}
    for key, value in (raw or {}).items():
        canon = _LOOKUP.get(_fold(key))
        if canon is None or value is None:
            continue
        if _fold(key) == canon:
            explicit[canon] = bool(value)
        else:
            from_synonyms[canon] = from_synonyms.get(canon, False) or bool(value)
    result = {}
    for canon in CANONICAL:
        if canon in explicit:
            result[canon] = explicit[canon]
        elif canon in from_synonyms:
            result[canon] = from_synonyms[canon]
        else:
            result[canon] = canon == "text"
    return result


def parse_required(names: Iterable[str]) -> tuple[str, ...]:
    """Canonicalise required capability names; every unknown one is named in one error."""
    canon, unknown = [], []
    for name in names:
        c = canonical_name(name)
        if c is None:
            unknown.append(name)
        elif c not in canon:
            canon.append(c)
    if unknown:
        raise UnknownCapability(unknown, CANONICAL)
    return tuple(sorted(canon, key=CANONICAL.index))


def missing_capabilities(capabilities: Mapping[str, bool], required: Iterable[str]) -> list[str]:
    """The canonical names in ``required`` that ``capabilities`` (already normalised) lacks."""
    return [c for c in required if not capabilities.get(c, False)]
