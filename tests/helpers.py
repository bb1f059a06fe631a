"""Builders for registry entries and files used across tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def entry(name: str, *, backend: str = "vllm", model_path: str | None = None, capabilities: dict[str, Any] | None = None,
          roles: list[str] | None = None, role_priority: dict[str, int] | None = None, aliases: list[str] | None = None,
          served_model_id: str | None = None, deprecated: bool = False, host: str | None = None,
          port: int | None = None, base_url: str | None = None, **extra: Any) -> dict[str, Any]:
    """An imageworks-style entry (only the fields given, plus the ones every entry has)."""
    cfg: dict[str, Any] = {}
    if base_url is not None:
        cfg["base_url"] = base_url
    if port is not None:
        cfg["port"] = port
    if host is not None:
        cfg["host"] = host
    if model_path is not None:
        cfg["model_path"] = model_path
    e: dict[str, Any] = {
        "name": name,
        "backend": backend,
        "backend_config": cfg,
        "capabilities": {"text": True, **(capabilities or {})},
        "roles": roles or [],
        "role_priority": role_priority or {},
        "model_aliases": aliases or [],
        "deprecated": deprecated,
        "version_lock": {"locked": False, "expected_aggregate_sha256": None, "last_verified": None},
    }
    if served_model_id is not None:
        e["served_model_id"] = served_model_id
    e.update(extra)
    return e


def write_registry(path: Path, entries: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(entries, indent=2) + "\n")
    return path
