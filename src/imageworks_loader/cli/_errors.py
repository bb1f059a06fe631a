"""One place where the CLI turns errors into messages and exit codes (0 ok, 1 failed, 2 usage)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

import typer

from ..errors import LoaderError, RequestError

if TYPE_CHECKING:
    from ._output import Out

__all__ = ["EXIT_FAILED", "EXIT_USAGE", "exit_code_for", "handle_errors"]

EXIT_FAILED = 1
EXIT_USAGE = 2


def exit_code_for(error: LoaderError) -> int:
    """Malformed requests (bad names, unknown capabilities) are usage errors; the rest failed."""
    return EXIT_USAGE if isinstance(error, RequestError) else EXIT_FAILED


@contextlib.contextmanager
def handle_errors(out: Out) -> Iterator[None]:
    """Print a LoaderError (or a bad setting) as one clear message, never a traceback, and exit."""
    try:
        yield
    except LoaderError as exc:
        out.error(exc.message)
        raise typer.Exit(exit_code_for(exc)) from None
    except ValueError as exc:  # bad environment settings (Settings.from_env)
        out.error(str(exc))
        raise typer.Exit(EXIT_USAGE) from None
    except KeyboardInterrupt:
        out.error("interrupted; nothing was written for the unfinished operation.")
        raise typer.Exit(130) from None
