"""``python -m imageworks_loader`` runs the CLI."""

from .cli.main import run

run()
