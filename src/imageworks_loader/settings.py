"""Settings from the environment, read once by the adapters and passed down as plain values."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["DEFAULT_METRICS_WINDOW", "DEFAULT_REGISTRY", "Settings"]

DEFAULT_REGISTRY = Path("configs/model_registry.json")
DEFAULT_METRICS_WINDOW = 50  # samples in the rolling window


def _float(env: Mapping[str, str], key: str, default: float) -> float:
    value = env.get(key, "").strip()
    if not value:
        return default
    try:
        parsed = float(value)
    except ValueError:
        raise ValueError(f"{key}={value!r} is not a number of seconds") from None
    if parsed <= 0:
        raise ValueError(f"{key}={value!r} must be positive")
    return parsed


@dataclass(frozen=True)
class Settings:
    """Everything configurable, with the environment variable that sets it."""

    registry_path: Path = DEFAULT_REGISTRY  # IMAGEWORKS_REGISTRY
    api_token: str | None = None  # IMAGEWORKS_API_TOKEN
    image_roots: tuple[Path, ...] = field(default_factory=lambda: (Path.cwd(),))  # IMAGEWORKS_IMAGE_ROOTS
    probe_timeout: float = 60.0  # IMAGEWORKS_PROBE_TIMEOUT (seconds per request)
    connect_timeout: float = 5.0  # IMAGEWORKS_CONNECT_TIMEOUT
    lock_timeout: float = 10.0  # IMAGEWORKS_LOCK_TIMEOUT
    check_timeout: float = 2.0  # IMAGEWORKS_CHECK_TIMEOUT (backend readiness checks)
    metrics_window: int = DEFAULT_METRICS_WINDOW  # IMAGEWORKS_METRICS_WINDOW
    max_body_bytes: int = 32 << 20  # request bodies (a 20 MB image is ~27 MB as base64)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        env = os.environ if env is None else env
        roots = tuple(
            Path(p).expanduser() for p in env.get("IMAGEWORKS_IMAGE_ROOTS", "").split(os.pathsep) if p.strip()
        ) or (Path.cwd(),)
        window = env.get("IMAGEWORKS_METRICS_WINDOW", "").strip()
        if window and (not window.isdigit() or int(window) < 1):
            raise ValueError(f"IMAGEWORKS_METRICS_WINDOW={window!r} must be a positive integer")
        values: dict[str, object] = {
            "registry_path": Path(env.get("IMAGEWORKS_REGISTRY") or DEFAULT_REGISTRY),
            "api_token": env.get("IMAGEWORKS_API_TOKEN") or None,
            "image_roots": roots,
            "probe_timeout": _float(env, "IMAGEWORKS_PROBE_TIMEOUT", 60.0),
            "connect_timeout": _float(env, "IMAGEWORKS_CONNECT_TIMEOUT", 5.0),
            "lock_timeout": _float(env, "IMAGEWORKS_LOCK_TIMEOUT", 10.0),
            "check_timeout": _float(env, "IMAGEWORKS_CHECK_TIMEOUT", 2.0),
            "metrics_window": int(window) if window else DEFAULT_METRICS_WINDOW,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]
