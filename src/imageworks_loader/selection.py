"""Pure selection: where to reach a model, and which model serves a role. No IO here.

Same registry in, same answer out: role candidates are ordered by (priority present, priority, name
bytes), so ties never depend on file order or hash seeds.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .capabilities import missing_capabilities
from .errors import MissingCapabilities, NoModelForRole

if TYPE_CHECKING:
    from .schema import ModelEntry
    from .store import Registry

__all__ = ["DEFAULT_PORTS", "Selection", "endpoint_for", "select_by_name", "select_by_role"]

#: Default port of each backend's OpenAI-compatible server.
DEFAULT_PORTS: dict[str, int] = {"ollama": 11434, "vllm": 8000, "lmdeploy": 23333, "llamacpp": 8080}
_FALLBACK_PORT = 8000


@dataclass(frozen=True)
class Selection:
    """Where and how to reach the chosen model."""

    name: str
    endpoint: str
    backend: str
    internal_model_id: str
    capabilities: dict[str, bool]
    locked: bool
    deprecated: bool
    display_name: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "endpoint": self.endpoint,
            "backend": self.backend,
            "internal_model_id": self.internal_model_id,
            "capabilities": self.capabilities,
            "locked": self.locked,
            "deprecated": self.deprecated,
            "display_name": self.display_name,
        }


def _backend_key(backend: str) -> str:
    return backend.lower().replace("-", "").replace("_", "").replace(".", "")


def endpoint_for(entry: ModelEntry) -> str:
    """``base_url`` if set; else ``host`` if it is a full URL; else ``http://host:port/v1``."""
    cfg = entry.config
    base_url = cfg.get("base_url")
    if base_url:
        return base_url.rstrip("/")
    host = (cfg.get("host") or "").strip()
    if host.startswith(("http://", "https://")):
        return host.rstrip("/")
    port = cfg.get("port") or DEFAULT_PORTS.get(_backend_key(entry.backend), _FALLBACK_PORT)
    return f"http://{host or 'localhost'}:{port}/v1"


def selection_of(entry: ModelEntry) -> Selection:
    return Selection(
        name=entry.name,
        endpoint=endpoint_for(entry),
        backend=entry.backend,
        internal_model_id=entry.internal_model_id,
        capabilities=dict(entry.caps),
        locked=entry.locked,
        deprecated=entry.is_deprecated,
        display_name=entry.display_name,
    )


def select_by_name(registry: Registry, name: str, required: Sequence[str] = ()) -> Selection:
    """The entry by name or alias, refusing it (naming every gap) if it lacks a required capability."""
    entry = registry.get(name)
    chosen = selection_of(entry)
    missing = missing_capabilities(chosen.capabilities, required)
    if missing:
        raise MissingCapabilities(entry.name, missing)
    return chosen


def role_order(entries: Iterable[ModelEntry], role: str) -> list[ModelEntry]:
    """Entries listing ``role``: lowest priority first, unprioritised after, ties by name bytes."""

    def key(e: ModelEntry) -> tuple[int, int, bytes]:
        prio = e.priorities.get(role)
        return (prio is None, prio if prio is not None else 0, e.name.encode("utf-8"))

    return sorted((e for e in entries if role in e.role_names), key=key)


def select_by_role(registry: Registry, role: str, required: Sequence[str] = ()) -> Selection:
    """The best non-deprecated entry for ``role`` that has every required capability."""
    rejected: list[tuple[str, str]] = []
    for entry in registry.role_order(role):
        if entry.is_deprecated:
            rejected.append((entry.name, "deprecated"))
            continue
        chosen = selection_of(entry)
        missing = missing_capabilities(chosen.capabilities, required)
        if missing:
            rejected.append((entry.name, f"lacks {', '.join(missing)}"))
            continue
        return chosen
    raise NoModelForRole(role, rejected)
