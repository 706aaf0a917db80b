"""Exponential back-off: one formula for every "wait longer after each failure"."""

from __future__ import annotations

import math


def backoff(attempt: int, base: float, cap: float = math.inf) -> float:
    """Seconds to wait after the ``attempt``-th failure in a row: ``base``, doubled for each
    failure after the first, at most ``cap``.

    ``backoff(1, 5, 300)`` is 5, ``backoff(3, 5, 300)`` is 20, ``backoff(10, 5, 300)`` is 300. No
    attempt count overflows: past what a float can hold the wait is ``cap``.
    """
    if attempt < 1:
        raise ValueError(f"attempt must be at least 1, not {attempt}")
    try:
        delay = math.ldexp(base, attempt - 1)  # base * 2 ** (attempt - 1), exactly
    except OverflowError:
        delay = math.inf
    return float(min(delay, cap))
