"""Pydantic v2 models of one registry entry, and the naming rules. No IO here.

The JSON file stays the source of truth for round-trips: the store keeps each entry's raw dict (with
unknown fields, key order and values) and these models are a validated, read-only view of it. That is
why every model ignores extra fields instead of storing them: the raw dict already has them.
"""

from __future__ import annotations

import re
from functools import cached_property
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    StrictBool,
    StrictInt,
    StringConstraints,
    with_config,
)
from typing_extensions import TypedDict

__all__ = [
    "ALIAS_RE",
    "NAME_RE",
    "ArtifactFile",
    "Artifacts",
    "BackendConfig",
    "ModelEntry",
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


def name_problem(name: object, *, alias: bool = False) -> str | None:
    """Why ``name`` breaks the naming rules, or None when it is fine."""
    if isinstance(name, str) and len(name) <= 128 and (ALIAS_RE if alias else NAME_RE).fullmatch(name):
        return None  # the common case: one C-level regex match, no per-character Python work
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


Name = Annotated[str, AfterValidator(check_name)]
Alias = Annotated[str, AfterValidator(check_alias)]
# imageworks writes "" for "no hash yet"; anything else must be a sha256 (checked in Rust, no Python call).
Sha256 = Annotated[str, StringConstraints(pattern=r"^(?:[0-9a-f]{64})?$")]


def _json_object(value: Any) -> Any:
    if value is not None and not isinstance(value, dict):
        raise ValueError("must be a JSON object or null")
    return value


# Free-form blocks the loader does not interpret: checked to be objects, never copied or walked.
JSONObject = Annotated[Any, PlainValidator(_json_object)]

_VIEW = ConfigDict(extra="ignore")


# Nested blocks are TypedDicts, not models: validating them builds plain dicts, about three times
# faster than nested model instances, which is what keeps a 10,000-entry registry loading quickly.
@with_config(_VIEW)
class BackendConfig(TypedDict, total=False):
    port: Annotated[StrictInt, Field(ge=1, le=65535)] | None
    host: str | None
    base_url: str | None
    model_path: str | None
    extra_args: list[Any] | None


@with_config(_VIEW)
class ArtifactFile(TypedDict):
    path: str
    sha256: Sha256 | None


@with_config(_VIEW)
class Artifacts(TypedDict, total=False):
    aggregate_sha256: Sha256 | None
    files: list[ArtifactFile] | None


@with_config(_VIEW)
class VersionLock(TypedDict, total=False):
    locked: StrictBool | None
    expected_aggregate_sha256: Sha256 | None
    last_verified: str | None


@with_config(_VIEW)
class VisionProbe(TypedDict, total=False):
    vision_ok: StrictBool | None
    timestamp: str | None
    probe_version: str | None
    latency_ms: float | None
    notes: Any


@with_config(_VIEW)
class Probes(TypedDict, total=False):
    vision: VisionProbe | None


class ModelEntry(BaseModel):
    """One registry entry: the fields the loader understands (others stay in the raw dict).

    Every field but ``name`` and ``backend`` may be missing or null (imageworks writes both); the
    properties below give the normalised view the rest of the code uses.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    name: Name
    backend: Annotated[str, Field(min_length=1, max_length=64)]
    display_name: str | None = None
    backend_config: BackendConfig | None = None
    served_model_id: str | None = None
    model_aliases: list[Alias] | None = None
    capabilities: dict[str, StrictBool | None] | None = None
    roles: list[str] | None = None
    role_priority: dict[str, StrictInt] | None = None
    deprecated: StrictBool | None = None
    artifacts: Artifacts | None = None
    version_lock: VersionLock | None = None
    probes: Probes | None = None
    performance: JSONObject = None
    generation_defaults: JSONObject = None
    metadata: JSONObject = None

    @cached_property
    def caps(self) -> dict[str, bool]:
        """Canonical capabilities (computed once per entry; entries are immutable)."""
        from .capabilities import normalise_capabilities

        return normalise_capabilities(self.capabilities)

    @property
    def internal_model_id(self) -> str:
        """The id the backend knows the model by: ``served_model_id``, else the name.

        imageworks wrote Python's ``None`` as the string "None"; that means "not set", not a model id.
        """
        sid = (self.served_model_id or "").strip()
        return self.name if sid in ("", "None", "null") else sid

    @property
    def config(self) -> BackendConfig:
        return self.backend_config or {}

    @property
    def model_path(self) -> str | None:
        return self.config.get("model_path")

    @property
    def aliases(self) -> list[str]:
        return self.model_aliases or []

    @property
    def role_names(self) -> list[str]:
        return self.roles or []

    @property
    def priorities(self) -> dict[str, int]:
        return self.role_priority or {}

    @property
    def is_deprecated(self) -> bool:
        return bool(self.deprecated)

    @property
    def locked(self) -> bool:
        return bool((self.version_lock or {}).get("locked"))

    @property
    def expected_aggregate(self) -> str | None:
        return (self.version_lock or {}).get("expected_aggregate_sha256") or None

    @property
    def recorded_aggregate(self) -> str | None:
        return (self.artifacts or {}).get("aggregate_sha256") or None

    @property
    def recorded_files(self) -> dict[str, str]:
        """{path: sha256} from the last verify, as recorded in ``artifacts.files``."""
        files = (self.artifacts or {}).get("files") or []
        return {f["path"]: sha for f in files if (sha := f.get("sha256"))}

    @property
    def vision_ok(self) -> bool | None:
        vision = (self.probes or {}).get("vision") or {}
        return vision.get("vision_ok")
