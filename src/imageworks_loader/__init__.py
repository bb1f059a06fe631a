"""imageworks-loader: a deterministic registry, selector, version lock, vision probe and metrics
for a fleet of local OpenAI-compatible model servers.

The package root stays import-light so the CLI starts fast: public names load on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "Loader": "services",
    "Registry": "store",
    "RegistryStore": "store",
    "ModelEntry": "schema",
    "Selection": "selection",
    "Settings": "settings",
    "StateDB": "state",
    "aggregate_sha256": "integrity",
    "hash_file": "integrity",
    "normalise_capabilities": "capabilities",
}
_ERRORS = (
    "ArtifactsMissing", "BackendError", "BackendNotReady", "BackendNotServing", "BackendTimeout", "BackendUnavailable",
    "CorruptArtifact", "ImageError", "ImagePathNotAllowed", "ImageTooLarge", "IntegrityError",
    "InvalidName", "InvalidSample", "LoaderError", "LockTimeout", "LockViolation", "MissingCapabilities", "ModelNotFound",
    "NoModelForRole", "NotAnImage", "RegistryError", "RegistryInvalid", "RegistryNotFound",
    "RegistryWriteError", "RequestError", "UnknownCapability",
)
_EXPORTS.update({name: "errors" for name in _ERRORS})

__all__ = sorted([*_EXPORTS, "__version__"])

if TYPE_CHECKING:  # for type checkers and IDEs; at run time names load lazily
    from .capabilities import normalise_capabilities  # noqa: F401
    from .errors import *  # noqa: F403
    from .integrity import aggregate_sha256, hash_file  # noqa: F401
    from .schema import ModelEntry  # noqa: F401
    from .selection import Selection  # noqa: F401
    from .services import Loader  # noqa: F401
    from .settings import Settings  # noqa: F401
    from .state import StateDB  # noqa: F401
    from .store import Registry, RegistryStore  # noqa: F401


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'imageworks_loader' has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
