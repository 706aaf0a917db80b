"""`flywheel iterate` requests: a token per flywheel under ``.flywheel/requests/``.

A request is local and transient (not committed): the command writes a fresh token, the next
reconcile that handles it records the token in the lake's status
(``lastHandledIterationRequest``), which is how the requester knows it was answered.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path

from reconciler.adapters.files import atomic_write_text

REQUESTS_DIR = ".flywheel/requests"


def request_path(root: Path, name: str) -> Path:
    return root / REQUESTS_DIR / name


def read_request(root: Path, name: str) -> str | None:
    try:
        token = request_path(root, name).read_text("utf-8").strip()
    except OSError:
        return None
    return token or None


def new_request(root: Path, name: str) -> str:
    """Write a new request token for ``name`` and return it (time-ordered, unique)."""
    token = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(3)
    atomic_write_text(request_path(root, name), token + "\n")
    return token
