"""The ``flywheel`` commands, one function each: parse → :mod:`reconciler.api` → render.

Every handler takes the parsed arguments and two consoles (``out`` for results, ``err`` for
progress and messages) and returns the exit code (:mod:`reconciler.cli.main`).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from reconciler.api import Repository


def repository(args: argparse.Namespace) -> Repository:
    """The repository ``-C`` names (default: the current folder)."""
    from reconciler import api

    return api.open_repository(args.repo)
