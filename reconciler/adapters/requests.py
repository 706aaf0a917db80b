"""`flywheel iterate` requests: a token per flywheel under ``.flywheel/requests/``.

A request is local and transient (not committed): the command writes a fresh token, the next
reconcile that handles it records the token in the lake's status
(``lastHandledIterationRequest``), which is how the requester knows it was answered.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path

from reconciler.adapters.files import atomic_write_text, read_regular
from reconciler.core.layout import request_file


def request_path(root: Path, name: str) -> Path:
    return root / request_file(name)


def read_request(root: Path, name: str) -> str | None:
    """The pending token, or None; bounded (a token is 23 characters): a FIFO, a device or a
    file of gigabytes in its place is no request, never a wait or a read of all of it."""
    try:
        token = read_regular(request_path(root, name), 256).decode("utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return token if token and token.isprintable() else None


def new_request(root: Path, name: str, iteration_id: str | None = None) -> str:
    """Write a new request token for ``name`` and return it (time-ordered, unique).

    The token starts with the id the iteration answering it is to take (the API's
    StartFlywheelIteration assigns it when asked: ``iteration_id``), or with the current UTC
    second; :func:`requested_id` reads it back."""
    stamp = iteration_id or time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    token = f"{stamp}-{secrets.token_hex(3)}"
    atomic_write_text(request_path(root, name), token + "\n")
    return token


def requested_id(token: str | None) -> str | None:
    """The iteration id a request token asks for (its ``YYYYMMDDTHHMMSSZ`` head), or None."""
    if token is None:
        return None
    head, _, _ = token.partition("-")
    return head if len(head) == 16 and head[8] == "T" and head.endswith("Z") else None
