"""The local-path rules of reconciler/adapters/sources.py: what a request may read on the server.

Real files, links and FIFOs in a temp repository; no S3 (that is tests/e2e/test_sources.py).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

from reconciler.adapters.sources import SourcePolicy, fetch, fetch_to
from reconciler.errors import DataError, FlywheelError, NotFoundError

CSV = b"spam,win a prize\nham,lunch at noon\n"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "data/x").mkdir(parents=True)
    (root / "data/x/train.csv").write_bytes(CSV)
    (root / "specs").mkdir()
    (root / "specs/secret.csv").write_bytes(b"ham,inside the repo but not in data\n")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside/secret.csv").write_bytes(b"ham,outside\n")
    os.symlink(tmp_path / "outside/secret.csv", root / "data/x/escape.csv")
    os.symlink("train.csv", root / "data/x/alias.csv")
    os.mkfifo(root / "data/x/pipe.csv")
    return root


@dataclass(frozen=True)
class Case:
    uri: str  # {root} and {tmp} are filled in
    error: type[FlywheelError] | None  # None: read, giving CSV
    says: str = ""


CASES = {
    "relative path in data/": Case("data/x/train.csv", None),
    "absolute path in data/": Case("{root}/data/x/train.csv", None),
    "file:// URI": Case("file://{root}/data/x/train.csv", None),
    "file://localhost URI": Case("file://localhost{root}/data/x/train.csv", None),
    "link staying inside data/": Case("data/x/alias.csv", None),
    "../ escape": Case("data/../../outside/secret.csv", DataError, "read only from data/"),
    "../ escape to a repository file": Case("data/../specs/secret.csv", DataError,
                                            "read only from data/"),
    "link in data/ pointing outside": Case("data/x/escape.csv", DataError,
                                           "read only from data/"),
    "/etc/passwd": Case("/etc/passwd", DataError, "read only from data/"),
    "file:///etc/passwd": Case("file:///etc/passwd", DataError, "read only from data/"),
    "/proc/self/environ": Case("/proc/self/environ", DataError, "read only from data/"),
    "a missing file outside is refused, not 'not found'": Case("/nonexistent/x.csv", DataError,
                                                               "read only from data/"),
    "a directory": Case("data/x", DataError, "not a regular file"),
    "data/ itself": Case("data", DataError, "not a regular file"),
    "a missing file": Case("data/x/missing.csv", NotFoundError, "no such file"),
    "http://": Case("http://x", DataError, "scheme 'http' is not accepted"),
    "ftp://": Case("ftp://example.org/x.csv", DataError, "scheme 'ftp' is not accepted: give s3://"),
    "a file URI with a host": Case("file://evil.example/etc/passwd", DataError,
                                   "file:///absolute/path"),
    "an empty URI": Case("", DataError, "no input file named"),
    "a NUL byte": Case("data/x/train.csv\0.txt", DataError, "read only from data/"),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_local_rules(repo: Path, tmp_path: Path, case: Case) -> None:
    uri = case.uri.replace("{root}", str(repo)).replace("{tmp}", str(tmp_path))
    policy = SourcePolicy.of(repo)
    target = tmp_path / "copy.csv"
    if case.error is None:
        assert fetch_to(uri, policy, target) == len(CSV)
        assert target.read_bytes() == CSV
        assert fetch(uri, policy) == CSV
        return
    with pytest.raises(case.error) as caught:
        fetch_to(uri, policy, target)
    message = str(caught.value)
    assert type(caught.value) is case.error
    assert case.says in message
    assert "\n" not in message
    assert (uri if uri.isprintable() else ascii(uri)) in message
    assert not target.exists()


def test_a_fifo_in_data_is_refused_without_blocking(repo: Path, tmp_path: Path) -> None:
    outcome: list[BaseException | int] = []

    def read() -> None:
        try:
            outcome.append(fetch_to("data/x/pipe.csv", SourcePolicy.of(repo), tmp_path / "c"))
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=read, daemon=True)
    worker.start()
    worker.join(5)
    if worker.is_alive():  # unblock it: open the FIFO for writing, then fail
        fd = os.open(repo / "data/x/pipe.csv", os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)
        pytest.fail("fetch_to blocked on a FIFO")
    assert len(outcome) == 1 and isinstance(outcome[0], DataError)
    assert "not a regular file" in str(outcome[0])


def test_a_device_is_refused(tmp_path: Path) -> None:
    policy = SourcePolicy.of(tmp_path, [Path("/dev")])
    with pytest.raises(DataError, match="not a regular file"):
        fetch("/dev/zero", policy)


def test_a_custom_allowed_folder_works_and_data_is_then_refused(repo: Path,
                                                                 tmp_path: Path) -> None:
    policy = SourcePolicy.of(repo, [tmp_path / "outside"])
    assert fetch(str(tmp_path / "outside/secret.csv"), policy) == b"ham,outside\n"
    assert fetch("data/x/escape.csv", SourcePolicy.of(repo, [tmp_path / "outside", Path("data")])) \
        == b"ham,outside\n"  # the link now leads into an allowed folder
    with pytest.raises(DataError, match="read only from") as caught:
        fetch("data/x/train.csv", policy)
    assert str(tmp_path / "outside") in str(caught.value)


def test_no_allowed_folder_refuses_every_local_file(repo: Path) -> None:
    with pytest.raises(DataError, match="not accepted here"):
        fetch("data/x/train.csv", SourcePolicy.of(repo, []))


@pytest.mark.parametrize("bound, ok", [(len(CSV), True), (len(CSV) - 1, False), (0, False)])
def test_the_size_bound(repo: Path, tmp_path: Path, bound: int, ok: bool) -> None:
    policy = SourcePolicy.of(repo, max_bytes=bound)
    target = tmp_path / "copy.csv"
    if ok:
        assert fetch_to("data/x/train.csv", policy, target) == len(CSV)
        return
    with pytest.raises(DataError, match="too big") as caught:
        fetch_to("data/x/train.csv", policy, target)
    assert "data/x/train.csv" in str(caught.value)
    assert not target.exists()


def test_a_file_longer_than_its_size_says_is_cut_at_the_bound(tmp_path: Path) -> None:
    # /proc files are regular with st_size 0 yet have content: the bound while streaming counts.
    policy = SourcePolicy.of(tmp_path, [Path("/proc/self")], max_bytes=100)
    assert os.stat("/proc/self/status").st_size == 0
    target = tmp_path / "copy.csv"
    with pytest.raises(DataError, match="more than 100 bytes"):
        fetch_to("/proc/self/status", policy, target)
    assert not target.exists()
    assert len(fetch("/proc/self/status", SourcePolicy.of(tmp_path, [Path("/proc/self")]))) > 100
