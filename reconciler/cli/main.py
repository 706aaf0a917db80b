"""``flywheel``: the command line. Thin: parse, call :mod:`reconciler.api`, render, and map
errors to the exit codes of :mod:`reconciler.cli.exits`, here and only here."""

from __future__ import annotations

import os

from rich.console import Console

from reconciler.cli.exits import EXIT_FAILED, EXIT_STOPPED, EXIT_USAGE
from reconciler.cli.parser import build_parser
from reconciler.errors import FlywheelError

#: Columns of tables printed to a pipe or file (no terminal to measure).
NON_TERMINAL_WIDTH = 240


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_USAGE
    out, err = console(stderr=False), console(stderr=True)
    try:
        code: int = args.handler(args, out, err)
        return code
    except FlywheelError as exc:
        err.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        return EXIT_USAGE
    except KeyboardInterrupt:
        err.print("interrupted", markup=False)
        return EXIT_STOPPED
    except MemoryError:  # reading a dataset says which; anything else is one line too
        err.print("error: out of memory: the command could not allocate more memory (raise its "
                  "memory limit or free memory, then retry)", markup=False, highlight=False,
                  soft_wrap=True)
        return EXIT_FAILED


def console(*, stderr: bool) -> Console:
    """A terminal gets rich output at its width; a pipe or a log file gets the full tables.

    Without a terminal, rich assumes 80 columns and cuts table cells to ``…``; CI logs and
    ``flywheel list > file`` deserve every figure, so they get a wide, colourless console.
    """
    found = Console(stderr=stderr)
    if found.is_terminal or os.environ.get("COLUMNS"):
        return found
    return Console(stderr=stderr, width=NON_TERMINAL_WIDTH, no_color=True)
