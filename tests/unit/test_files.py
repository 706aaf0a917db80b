"""Tests for the file checks of reconciler/adapters/files.py: where a path resolves, UTF-8 lines."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reconciler.adapters.files import (
    OutsideFolder,
    Unresolvable,
    resolve_within,
    utf8_error_line,
)


def repository(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "data/nested/deeper").mkdir(parents=True)
    (root / "data/nested/deeper/a.csv").write_text("spam,x\n")
    (root / "lake").mkdir()
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside/secret.csv").write_text("ham,secret\n")
    return root


def test_a_nested_path_inside_is_accepted_and_resolved(tmp_path: Path) -> None:
    root = repository(tmp_path)
    target = resolve_within(root, "data", "data/nested/deeper/a.csv")
    assert target == (root / "data/nested/deeper/a.csv").resolve()


def test_a_symlink_staying_inside_the_folder_is_followed(tmp_path: Path) -> None:
    root = repository(tmp_path)
    os.symlink("nested/deeper/a.csv", root / "data/link.csv")
    assert resolve_within(root, "data", "data/link.csv") == \
        (root / "data/nested/deeper/a.csv").resolve()


@pytest.mark.parametrize("link", ["data/out.csv", "data/nested/out.csv"])
def test_a_symlink_leading_out_of_the_repository_is_refused(tmp_path: Path, link: str) -> None:
    root = repository(tmp_path)
    os.symlink(tmp_path / "outside/secret.csv", root / link)
    with pytest.raises(OutsideFolder) as info:
        resolve_within(root, "data", link)
    assert info.value.target == (tmp_path / "outside/secret.csv").resolve()


def test_a_symlinked_folder_leading_elsewhere_in_the_repository_is_refused(
        tmp_path: Path) -> None:
    root = repository(tmp_path)
    os.symlink("../../lake", root / "data/nested/to-lake")
    with pytest.raises(OutsideFolder):
        resolve_within(root, "data", "data/nested/to-lake/x.json")


def test_dot_dot_and_absolute_paths_cannot_leave(tmp_path: Path) -> None:
    root = repository(tmp_path)
    with pytest.raises(OutsideFolder):
        resolve_within(root, "data", "data/../lake/x")
    with pytest.raises(OutsideFolder):
        resolve_within(root, "data", tmp_path / "outside/secret.csv")
    assert resolve_within(root, "data", (root / "data/nested").absolute()) == \
        (root / "data/nested").resolve()


def test_a_path_not_existing_yet_is_checked_by_where_it_would_be(tmp_path: Path) -> None:
    root = repository(tmp_path)
    assert resolve_within(root, "lake", "lake/new/status.json") == \
        (root / "lake/new/status.json").resolve()


def test_a_symlink_loop_is_unresolvable(tmp_path: Path) -> None:
    root = repository(tmp_path)
    os.symlink("b", root / "data/a")
    os.symlink("a", root / "data/b")
    with pytest.raises(Unresolvable):
        resolve_within(root, "data", "data/a/x.csv")


def test_both_errors_are_value_errors(tmp_path: Path) -> None:
    assert issubclass(OutsideFolder, ValueError)
    assert issubclass(Unresolvable, ValueError)


@pytest.mark.parametrize(("chunks", "line"), [
    ([b"a\nb\n"], None),
    ([b"a\nb\xff\n"], 2),
    ([b"a\n\n", b"b\n\xe9t\xe9\n"], 4),
    ([b"caf\xc3", b"\xa9\n"], None),  # a sequence split across two blocks is whole
    ([b"ok\ncaf\xc3"], 2),  # cut short by the end of the file
    ([], None),
])
def test_utf8_error_line(chunks: list[bytes], line: int | None) -> None:
    assert utf8_error_line(chunks) == line


def test_utf8_error_line_agrees_with_a_whole_decode() -> None:
    data = "\n".join(f"line {i} caf\u00e9" for i in range(1000)).encode() + b"\n\xfe\nmore\n"
    with pytest.raises(UnicodeDecodeError) as info:
        data.decode("utf-8")
    expected = data[: info.value.start].count(b"\n") + 1
    assert utf8_error_line(data[i:i + 7] for i in range(0, len(data), 7)) == expected == 1001



def test_a_folder_linked_elsewhere_in_the_repository_is_followed_only_if_it_may_link(
        tmp_path: Path) -> None:
    """``data/`` (only read) may be a link to another folder of the repository; ``lake/``
    (written) may not: records would land in that other folder."""
    root = repository(tmp_path)
    (root / "archive").mkdir()
    (root / "archive/b.csv").write_text("spam,y\n")
    (root / "data").rename(root / "old-data")
    os.symlink("archive", root / "data")
    target = (root / "archive/b.csv").resolve()
    assert resolve_within(root, "data", "data/b.csv", folder_may_link=True) == target
    with pytest.raises(OutsideFolder):
        resolve_within(root, "data", "data/b.csv")


def test_a_folder_linked_out_of_the_repository_is_refused_even_if_it_may_link(
        tmp_path: Path) -> None:
    root = repository(tmp_path)
    (root / "data").rename(root / "old-data")
    os.symlink(tmp_path / "outside", root / "data")
    for may_link in (True, False):
        with pytest.raises(OutsideFolder):
            resolve_within(root, "data", "data/secret.csv", folder_may_link=may_link)
