"""Every error the loader raises on purpose, in one tree.

    LoaderError
    ├── RegistryError
    │   ├── RegistryNotFound        (+ FileNotFoundError)  the registry file does not exist
    │   ├── RegistryInvalid         malformed JSON, bad entries, duplicate names (lists every problem)
    │   ├── RegistryWriteError      (+ OSError)            disk full, read-only folder; old file intact
    │   └── LockTimeout             (+ TimeoutError)       another writer holds the registry lock
    ├── RequestError                the caller asked for something malformed
    │   ├── InvalidName             a name that breaks the naming rules
    │   ├── InvalidSample           a metrics sample that cannot be a measurement
    │   └── UnknownCapability       a capability the loader has no name for
    ├── ModelNotFound               (+ LookupError)        no entry by that name or alias
    ├── NoModelForRole              no entry can serve the role
    ├── MissingCapabilities         the model lacks required capabilities
    ├── IntegrityError
    │   ├── ArtifactsMissing        no model_path, or its files are not there
    │   ├── LockViolation           files differ from the lock (names changed/added/removed files)
    │   └── CorruptArtifact         a content-addressed blob does not hash to its own name
    ├── ImageError
    │   ├── NotAnImage              the bytes do not decode as an image
    │   ├── ImageTooLarge           over the byte or pixel limits
    │   └── ImagePathNotAllowed     outside the configured image roots
    └── BackendError                the model server could not be used
        ├── BackendUnavailable      connection refused, DNS failure, garbage answer
        ├── BackendTimeout          (+ TimeoutError)       no answer within the timeout
        ├── BackendNotServing       the server is up but does not list the model
        └── BackendNotReady         select's readiness check failed (wraps the reason)

Each error carries a stable machine ``code`` (the API puts it in ``detail.error``), a ``message`` that
says what failed, where, and what to do next, and structured attributes for callers. Messages are built
in ``__init__`` so call sites stay short. Adapters (API, CLI) map classes to status and exit codes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "ArtifactsMissing",
    "BackendError",
    "BackendNotReady",
    "BackendNotServing",
    "BackendTimeout",
    "BackendUnavailable",
    "CorruptArtifact",
    "ImageError",
    "ImagePathNotAllowed",
    "ImageTooLarge",
    "IntegrityError",
    "InvalidName",
    "InvalidSample",
    "LoaderError",
    "LockTimeout",
    "LockViolation",
    "MissingCapabilities",
    "ModelNotFound",
    "NoModelForRole",
    "NotAnImage",
    "RegistryError",
    "RegistryInvalid",
    "RegistryNotFound",
    "RegistryWriteError",
    "RequestError",
    "UnknownCapability",
]


class LoaderError(Exception):
    """Base of every error raised on purpose; ``str(err)`` is a message ready for a user."""

    code = "loader_error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        """The JSON error body's ``detail`` (without anything that leaks server internals)."""
        return {"error": self.code, "message": self.message, **self.details}


# ---------------------------------------------------------------- registry


class RegistryError(LoaderError):
    """The registry file cannot be read or written."""

    code = "registry_error"


class RegistryNotFound(RegistryError, FileNotFoundError):
    """The registry file does not exist."""

    code = "registry_not_found"

    def __init__(self, path: Path) -> None:
        self.path = path
        super().__init__(
            f"Registry not found: {path}. Pass --registry PATH or set IMAGEWORKS_REGISTRY.",
        )


class RegistryInvalid(RegistryError):
    """The registry file is not valid; ``problems`` lists every problem, not only the first."""

    code = "registry_invalid"

    def __init__(self, path: Path, problems: Sequence[str]) -> None:
        self.path = path
        self.problems = list(problems)
        listing = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(
            f"Registry {path} is invalid ({len(self.problems)} problem"
            f"{'s' if len(self.problems) != 1 else ''}); nothing was changed. Fix the file and retry:\n"
            f"{listing}",
            problems=self.problems,
        )


class RegistryWriteError(RegistryError, OSError):
    """Writing the registry failed; the previous file is left intact."""

    code = "registry_write_failed"

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        super().__init__(
            f"Could not write registry {path}: {reason}. The previous file is intact; "
            "free disk space or fix the folder's permissions and retry.",
        )


class LockTimeout(RegistryError, TimeoutError):
    """Another process held the registry's write lock for longer than the timeout."""

    code = "registry_busy"

    def __init__(self, lock_path: Path, timeout: float) -> None:
        self.lock_path = lock_path
        super().__init__(
            f"Timed out after {timeout:g}s waiting for the registry lock {lock_path}; another "
            "imageworks-loader process is writing. Retry in a moment.",
        )


# ---------------------------------------------------------------- requests


class RequestError(LoaderError):
    """The caller asked for something malformed."""

    code = "invalid_request"


class InvalidName(RequestError, ValueError):
    """A model name or alias that breaks the naming rules (never used to build a path)."""

    code = "invalid_name"

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        super().__init__(
            f"Invalid model name {name!r}: {reason}. Names are 1-128 characters of letters, digits and "
            "'. _ - : ( ) + @', not starting with '.'.",
        )


class UnknownCapability(RequestError, ValueError):
    """A capability name the loader does not know, even as a synonym."""

    code = "unknown_capability"

    def __init__(self, names: Iterable[str], known: Iterable[str]) -> None:
        self.names = sorted(set(names))
        super().__init__(
            f"Unknown capabilit{'y' if len(self.names) == 1 else 'ies'}: {', '.join(self.names)}. "
            f"Known: {', '.join(sorted(known))}.",
            capabilities=self.names,
        )


class InvalidSample(RequestError, ValueError):
    """A metrics sample that cannot be a real measurement (negative, ttft after the end, ...)."""

    code = "invalid_sample"

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__(
            f"Invalid metrics sample: {'; '.join(self.problems)}. Send ttft_ms <= duration_ms in milliseconds "
            "and a non-negative integer tokens_generated.",
            problems=self.problems,
        )


# ---------------------------------------------------------------- selection


class ModelNotFound(LoaderError, LookupError):
    """No entry has this name or alias."""

    code = "model_not_found"

    def __init__(self, name: str, suggestions: Sequence[str] = ()) -> None:
        self.name = name
        self.suggestions = list(suggestions)
        hint = (
            f" Did you mean {' or '.join(repr(s) for s in self.suggestions)}?"
            if self.suggestions
            else ""
        )
        super().__init__(
            f"No model named {name!r} in the registry.{hint} Run 'imageworks-loader list' to see them.",
            name=name,
            suggestions=self.suggestions,
        )


class NoModelForRole(LoaderError, LookupError):
    """No non-deprecated entry lists the role with the required capabilities."""

    code = "no_model_for_role"

    def __init__(self, role: str, rejected: Sequence[tuple[str, str]] = ()) -> None:
        self.role = role
        self.rejected = list(rejected)
        why = "".join(f"\n  - {name}: {reason}" for name, reason in self.rejected)
        super().__init__(
            f"No model can serve role {role!r}."
            + (f" Candidates rejected:{why}" if why else " No entry lists this role.")
            + "\nAdd the role to an entry's 'roles' or relax the required capabilities.",
            role=role,
            rejected=[{"name": n, "reason": r} for n, r in self.rejected],
        )


class MissingCapabilities(LoaderError):
    """The model lacks one or more required capabilities (all of them are named)."""

    code = "missing_capabilities"

    def __init__(self, name: str, missing: Sequence[str]) -> None:
        self.name = name
        self.missing = sorted(missing)
        super().__init__(
            f"Model {name!r} lacks required capabilit{'y' if len(self.missing) == 1 else 'ies'}: "
            f"{', '.join(self.missing)}. Choose another model or select by role.",
            name=name,
            missing=self.missing,
        )


# ---------------------------------------------------------------- integrity


class IntegrityError(LoaderError):
    """The model's files cannot be trusted."""

    code = "integrity_error"


class ArtifactsMissing(IntegrityError):
    """The entry has no usable ``backend_config.model_path``, or its files are not there."""

    code = "artifacts_missing"

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        super().__init__(
            f"Cannot check the files of {name!r}: {reason}.",
            name=name,
        )


class LockViolation(IntegrityError):
    """Files differ from what the lock or the last verify recorded."""

    code = "lock_violation"

    def __init__(
        self,
        name: str,
        *,
        changed: Sequence[str] = (),
        added: Sequence[str] = (),
        removed: Sequence[str] = (),
        reason: str = "",
        expected: str | None = None,
        actual: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.name = name
        self.changed, self.added, self.removed = sorted(changed), sorted(added), sorted(removed)
        self.expected, self.actual = expected, actual
        parts = []
        for label, files in (("changed", self.changed), ("added", self.added), ("removed", self.removed)):
            if files:
                shown = ", ".join(files[:10]) + (f" (+{len(files) - 10} more)" if len(files) > 10 else "")
                parts.append(f"{label}: {shown}")
        what = "; ".join(parts) or reason or "files differ"
        sums = f" Expected aggregate sha256 {expected}, got {actual}." if expected and actual else ""
        hint = hint or f"Run 'imageworks-loader verify {name}' to re-check the files."
        super().__init__(
            f"Model {name!r} is locked and its files do not match: {what}.{sums} {hint}",
            name=name,
            changed=self.changed,
            added=self.added,
            removed=self.removed,
            expected_aggregate_sha256=expected,
            actual_aggregate_sha256=actual,
        )


class CorruptArtifact(IntegrityError):
    """A content-addressed file (HF blob, Ollama ``sha256-…`` blob) does not hash to its name."""

    code = "corrupt_artifact"

    def __init__(self, name: str, corrupt: Sequence[tuple[str, str, str]]) -> None:
        self.name = name
        self.corrupt = list(corrupt)
        lines = "; ".join(f"{p}: expected sha256 {exp}, got {got}" for p, exp, got in self.corrupt)
        super().__init__(
            f"Model {name!r} has corrupt content-addressed files: {lines}. Re-download them.",
            name=name,
            corrupt=[{"path": p, "expected": e, "actual": g} for p, e, g in self.corrupt],
        )


# ---------------------------------------------------------------- images


class ImageError(RequestError):
    """The caller's image cannot be used."""

    code = "invalid_image"


class NotAnImage(ImageError):
    """The bytes do not decode as an image."""

    code = "not_an_image"

    def __init__(self, where: str, reason: str = "") -> None:
        super().__init__(
            f"{where} is not a readable image{': ' + reason if reason else ''}. "
            "Send a PNG, JPEG, WebP or GIF file.",
        )


class ImageTooLarge(ImageError):
    """The image is over the byte or pixel limit."""

    code = "image_too_large"

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{where} is too large: {reason}. Downscale or recompress it first.")


class ImagePathNotAllowed(ImageError):
    """``image_path`` resolves outside every configured image root."""

    code = "image_path_not_allowed"

    def __init__(self, path: str) -> None:
        super().__init__(
            f"image_path {path!r} is outside the server's image roots. Put the image under an image "
            "root (IMAGEWORKS_IMAGE_ROOTS) or send it as image_b64.",
        )


# ---------------------------------------------------------------- backends


class BackendError(LoaderError):
    """The model server could not be used."""

    code = "backend_error"


class BackendUnavailable(BackendError):
    """Connection refused, DNS failure, 5xx or an unreadable answer."""

    code = "backend_unavailable"

    def __init__(self, endpoint: str, reason: str) -> None:
        self.endpoint = endpoint
        super().__init__(
            f"Backend {endpoint} is unavailable: {reason}. Start the model server or check its "
            "host and port in the registry.",
            endpoint=endpoint,
        )


class BackendTimeout(BackendError, TimeoutError):
    """The backend accepted the connection but did not answer in time."""

    code = "backend_timeout"

    def __init__(self, endpoint: str, timeout: float) -> None:
        self.endpoint = endpoint
        super().__init__(
            f"Backend {endpoint} did not answer within {timeout:g}s. Check that it is not overloaded "
            "or raise the timeout (IMAGEWORKS_PROBE_TIMEOUT, --timeout).",
            endpoint=endpoint,
        )


class BackendNotServing(BackendError):
    """The backend answers but does not list the model's ``internal_model_id``."""

    code = "backend_not_serving"

    def __init__(self, endpoint: str, model_id: str, served: Sequence[str]) -> None:
        self.endpoint = endpoint
        shown = ", ".join(sorted(served)[:10]) or "none"
        super().__init__(
            f"Backend {endpoint} is up but does not serve {model_id!r} (it serves: {shown}). "
            "Load the model on the server or fix served_model_id in the registry.",
            endpoint=endpoint,
            internal_model_id=model_id,
        )


class BackendNotReady(BackendError):
    """``select`` with a readiness check: the model's backend is down or does not serve it."""

    code = "backend_not_ready"

    def __init__(self, name: str, cause: BackendError) -> None:
        self.name = name
        self.cause = cause
        super().__init__(
            f"Model {name!r} was selected but its backend is not ready: {cause.message}",
            name=name,
            reason=cause.code,
        )
