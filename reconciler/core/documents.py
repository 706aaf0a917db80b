"""A labelled document, as the datasets adapter reads it and the stages train and score on it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Document:
    labels: frozenset[str]
    text: str
    line: int  # the row of its dataset file it came from (errors name it)
