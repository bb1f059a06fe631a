"""Pydantic v2 models of one registry entry, and the naming rules. No IO here.

The JSON file stays the source of truth for round-trips: the store keeps each entry's raw dict (with
unknown fields, key order and values) and these models are a validated, read-only view of it. That is
why every model ignores extra fields instead of storing them: the raw dict already has them.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, StrictInt, model_validator

__all__ = [
    "ALIAS_RE",
    "Artifacts",
    "ArtifactFile",
    "BackendConfig",
    "ModelEntry",
    "NAME_RE",
    "Probes",
    "VersionLock",
    "VisionProbe",
    "check_alias",
    "check_name",
    "name_problem",
]

# 1-128 characters of letters, digits and ". _ - : ( ) + @", not starting with ".".
NAME_RE = re.compile(r"[A-Za-z0-9_\-:()+@][A-Za-z0-9._\-:()+@]{0,127}")
# Aliases may also be Hugging Face repo ids ("Qwen/Qwen2.5-VL-7B-Instruct-AWQ"): at most one "/",
# each side a valid name, so "../x", "/etc" and "a/b/c" stay out.
ALIAS_RE = re.compile(rf"{NAME_RE.pattern}(?:/{NAME_RE.pattern})?")
_HEX64 = re.compile(r"[0-9a-f]{64}")


def name_problem(name: object, *, alias: bool = False) -> str | None:
    """Why ``name`` breaks the naming rules, or None when it is fine."""
    if not isinstance(name, str):
        return "must be a string"
    if not name:
        return "must not be empty"
    if len(name) > 128:
        return f"is {len(name)} characters long, the limit is 128"
    if name.startswith("."):
        return "must not start with '.'"
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        return "contains control characters"
    if not (ALIAS_RE if alias else NAME_RE).fullmatch(name):
        bad = sorted({c for c in name if not re.fullmatch(r"[A-Za-z0-9._\-:()+@]", c)} - ({"/"} if alias else set()))
        if bad:
            return f"contains {' '.join(repr(c) for c in bad)}"
        return "has a path separator in the wrong place" if "/" in name else "is not a valid name"
    return None


def check_name(name: str) -> str:
    """Pydantic after-validator for entry names."""
    problem = name_problem(name)
    if problem:
        raise ValueError(f"name {problem}")
    return name


def check_alias(alias: str) -> str:
    """Pydantic after-validator for aliases (names, or ``org/name`` repo ids)."""
    problem = name_problem(alias, alias=True)
    if problem:
        raise ValueError(f"alias {problem}")
    return alias


def _check_sha(value: str | None) -> str | None:
    if value and not _HEX64.fullmatch(value):
        raise ValueError("must be 64 lowercase hex digits (a sha256)")
    return value or None


Name = Annotated[str, AfterValidator(check_name)]
Alias = Annotated[str, AfterValidator(check_alias)]
Sha256 = Annotated[str | None, AfterValidator(_check_sha)]


_DEFAULTED = (
    "backend_config", "model_aliases", "capabilities", "roles", "role_priority", "deprecated",
    "artifacts", "version_lock", "probes",
)


class _View(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class BackendConfig(_View):
    port: StrictInt | None = Field(default=None, ge=1, le=65535)
    host: str | None = None
    base_url: str | None = None
    model_path: str | None = None
    extra_args: list[Any] = Field(default_factory=list)


class ArtifactFile(_View):
    path: str
    sha256: Sha256


class Artifacts(_View):
    aggregate_sha256: Sha256 = None
    files: list[ArtifactFile] = Field(default_factory=list)


class VersionLock(_View):
    locked: StrictBool = False
    expected_aggregate_sha256: Sha256 = None
    last_verified: str | None = None


class VisionProbe(_View):
    vision_ok: StrictBool | None = None
    timestamp: str | None = None
    probe_version: str | None = None
    latency_ms: float | None = None
    notes: Any = None


class Probes(_View):
    vision: VisionProbe | None = None


class ModelEntry(_View):
    """One registry entry: the fields the loader understands (others stay in the raw dict)."""

    name: Name
    backend: Annotated[str, Field(min_length=1, max_length=64)]
    display_name: str | None = None
    backend_config: BackendConfig = Field(default_factory=BackendConfig)
    served_model_id: str | None = None
    model_aliases: list[Alias] = Field(default_factory=list)
    capabilities: dict[str, StrictBool | None] = Field(default_factory=dict)
    roles: list[str] = Field(default_factory=list)
    role_priority: dict[str, StrictInt] = Field(default_factory=dict)
    deprecated: StrictBool = False
    artifacts: Artifacts = Field(default_factory=Artifacts)
    version_lock: VersionLock = Field(default_factory=VersionLock)
    probes: Probes = Field(default_factory=Probes)
    performance: dict[str, Any] | None = None
    generation_defaults: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None

    @model_validator(mode="before")
    @classmethod
    def _null_means_default(cls, data: Any) -> Any:
        # imageworks writes null for empty containers in some versions; null means "not set".
        if isinstance(data, dict) and any(data.get(k, 0) is None for k in _DEFAULTED):
            data = {k: v for k, v in data.items() if not (k in _DEFAULTED and v is None)}
        return data

    @property
    def internal_model_id(self) -> str:
        """The id the backend knows the model by: ``served_model_id``, else the name.

        imageworks wrote Python's ``None`` as the string "None"; that means "not set", not a model id.
        """
        sid = (self.served_model_id or "").strip()
        return self.name if sid in ("", "None", "null") else sid

    @property
    def locked(self) -> bool:
        return self.version_lock.locked
