"""``flywheel``, the command line: parse the arguments, call :mod:`reconciler.api`, render."""

from reconciler.cli.main import main

__all__ = ["main"]
