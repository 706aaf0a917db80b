"""The two textual edits of a spec's ``activeModel`` line: the policy's (only its own marked
line) and a person's pin through the API (any plain line; the marker goes)."""

from __future__ import annotations

import pytest

from reconciler.core.specedit import (
    POLICY_MARKER,
    SpecEditError,
    pin_active_model,
    set_active_model,
)

HEAD = "name: demo\ntask:\n  mode: MULTI_CLASS\n"


@pytest.mark.parametrize(("text", "line", "expected"), [
    (HEAD, None, HEAD + f"activeModel: v2  {POLICY_MARKER}\n"),
    (HEAD.rstrip("\n"), None, HEAD + f"activeModel: v2  {POLICY_MARKER}\n"),
    (HEAD + f"activeModel: v1  {POLICY_MARKER}\n", 4, HEAD + f"activeModel: v2  {POLICY_MARKER}\n"),
    (HEAD + f"activeModel: 'v1'  {POLICY_MARKER}\r\n", 4,
     HEAD + f"activeModel: 'v2'  {POLICY_MARKER}\r\n"),
], ids=["append", "append-no-final-newline", "replace", "quoted-crlf"])
def test_the_policy_writes_only_its_marked_line(text: str, line: int | None,
                                                expected: str) -> None:
    assert set_active_model(text, line, "v2") == expected


@pytest.mark.parametrize(("text", "words"), [
    (HEAD + "activeModel: v1\n", "a person's pin"),
    (HEAD + "activeModel:\n  v1\n", "not a plain top-level"),
], ids=["pin", "odd-layout"])
def test_the_policy_never_edits_a_pin_or_an_odd_layout(text: str, words: str) -> None:
    with pytest.raises(SpecEditError, match=words):
        set_active_model(text, 4, "v2")


@pytest.mark.parametrize(("text", "line", "expected"), [
    (HEAD, None, HEAD + "activeModel: v3\n"),
    ("", None, "activeModel: v3\n"),
    (HEAD + "activeModel: v1\n", 4, HEAD + "activeModel: v3\n"),
    (HEAD + f"activeModel: v1  {POLICY_MARKER}\n", 4, HEAD + "activeModel: v3\n"),
    (HEAD + "activeModel: \"v1\"  # chosen by hand\n", 4,
     HEAD + "activeModel: \"v3\"  # chosen by hand\n"),
    (HEAD.replace("\n", "\r\n"), None, HEAD.replace("\n", "\r\n") + "activeModel: v3\r\n"),
], ids=["append", "empty-file", "replace-pin", "policy-line-becomes-a-pin", "keep-comment",
        "crlf"])
def test_a_persons_pin_replaces_any_plain_line_and_drops_the_marker(
        text: str, line: int | None, expected: str) -> None:
    assert pin_active_model(text, line, "v3") == expected


@pytest.mark.parametrize(("line", "version", "words"), [
    (4, "3", "not a model version"),
    (9, "v3", "outside the file"),
    (1, "v3", "not a plain top-level"),
], ids=["bad-version", "outside", "other-line"])
def test_a_pin_that_cannot_be_written_safely_changes_nothing(line: int, version: str,
                                                              words: str) -> None:
    with pytest.raises(SpecEditError, match=words):
        pin_active_model(HEAD + "activeModel: v1\n", line, version)
