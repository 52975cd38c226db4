"""``python -m microrestore`` runs the CLI."""

from microrestore.cli.app import run

run()
