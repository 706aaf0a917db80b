"""Hostile inputs through the real ``flywheel`` CLI: each is refused alone, the others go on.

One base repository (real git + DVC) is built once: a good flywheel ``good`` with two model
versions from two real iterations, plus valid data for a second flywheel ``bad``. Every case
copies it, makes ``good`` cheap to prove alive (its spec now pins ``activeModel: v1``, which needs
no DVC), plants one hostile input, and asserts that

1. the error is one line naming the file (and the line and field for a spec field or a CSV row),
2. ``validate``/``reconcile``/``classify`` exit non-zero (whichever the case names),
3. nothing is written anywhere but ``lake/good/status.json`` (so nothing for the bad flywheel),
4. ``good`` still reconciled in the same run: its pin is applied, its other lake files are
   byte-identical.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import pickle
import shutil
import subprocess
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import FLYWHEEL, Run, bundled_rows, run_cli, write_csv

LABELS = ["games", "mail"]
BAD_SPEC = "specs/bad.yaml"
BAD_TRAIN = "data/bad/train.csv"
#: Text cells that a spreadsheet would run as formulas: as document text they are just text.
FORMULA_TEXTS = [
    ("games", '=HYPERLINK("http://example.invalid","arcade game")'),
    ("mail", "+cmd|' /C calc'!A0 mail client"),
    ("games", "-2+3+cmd|' /C calc'!A0 puzzle game"),
    ("mail", "@SUM(1+1)*cmd|' /C calc'!A0 mail reader"),
]

# The bad flywheel's spec; its line numbers are what the cases below refer to:
#  1 name   2 task   3 mode   4 labels   5 minDocumentsPerLabel   6 datasets
#  7 - name: train   8 type   9 path   10 - name: test   11 type   12 path
BAD = """\
name: bad
task:
  mode: MULTI_CLASS
  labels: [games, mail]
  minDocumentsPerLabel: 3
datasets:
  - name: train
    type: TRAIN
    path: data/bad/train.csv
  - name: test
    type: TEST
    path: data/bad/test.csv
"""
END = BAD.count("\n") + 1  # the line of anything appended to BAD
VALID_ROWS = b"games,a puzzle game with levels\nmail,a mail reader for the terminal\n"


#: Some 180 short-lived CLI processes run here; letting them share compiled bytecode (kept in a
#: temporary folder, out of the project) saves a fifth of each one's start-up.
BYTECODE = Path(tempfile.gettempdir()) / "flywheel-hostile-pycache"


def start(repo: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "PYTHONPYCACHEPREFIX": str(BYTECODE)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return subprocess.Popen([FLYWHEEL, *args], cwd=repo, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def finish(process: subprocess.Popen[str], timeout: float = 60) -> Run:
    """Wait for a started command; the short time-out makes a blocking read fail the case."""
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise
    return Run(process.returncode, stdout, stderr)


def flywheel(repo: Path, *args: str) -> Run:
    """The real console script, run to completion."""
    return finish(start(repo, *args))


def good_spec(datasets: list[str], pin: str | None = None) -> str:
    spec: dict[str, object] = {
        "name": "good",
        "task": {"mode": "MULTI_CLASS", "labels": LABELS, "minDocumentsPerLabel": 5},
        "datasets": [{"name": name, "type": "TEST" if name == "test" else "TRAIN",
                      "path": f"data/good/{name}.csv"} for name in datasets],
        "promotion": {"minF1": 0.0},
    }
    if pin:
        spec["activeModel"] = pin
    return yaml.safe_dump(spec, sort_keys=False)


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``good`` reconciled twice (v1, then v2 promoted); valid data waiting for ``bad``."""
    root = tmp_path_factory.mktemp("hostile") / "repo"
    run_cli(root.parent, "init", str(root))
    write_csv(root / "data/good/v1.csv", bundled_rows("debian-sections", "train-v1.csv",
                                                      LABELS, 12))
    write_csv(root / "data/good/v2.csv", [
        *bundled_rows("debian-sections", "train-v2.csv", LABELS, 12), *FORMULA_TEXTS])
    write_csv(root / "data/good/test.csv", bundled_rows("debian-sections", "test.csv",
                                                        LABELS, 8))
    (root / "specs/good.yaml").write_text(good_spec(["v1", "test"]))
    run_cli(root, "reconcile")
    (root / "specs/good.yaml").write_text(good_spec(["v1", "test", "v2"]))
    run_cli(root, "reconcile")
    write_csv(root / BAD_TRAIN, bundled_rows("debian-sections", "train-v3.csv", LABELS, 6))
    write_csv(root / "data/bad/test.csv", bundled_rows("debian-sections", "test.csv", LABELS, 3,
                                                       skip=8))
    outside = root.parent / "outside"
    write_csv(outside / "train.csv", bundled_rows("debian-sections", "train-v3.csv", LABELS, 6))
    write_csv(outside / "test.csv", bundled_rows("debian-sections", "test.csv", LABELS, 3))
    (outside / "spec.yaml").write_text(BAD)
    status = json.loads((root / "lake/good/status.json").read_text())
    assert status["activeModel"] == "v2" and not status["pinned"]
    # A valid status for the cloned flywheel ``bad`` that pins v1: what a link out would obey.
    (outside / "status.json").write_text(json.dumps(
        {**status, "flywheelName": "bad", "activeModel": "v1", "pinned": True}))
    # And a valid iteration record of ``bad``, for a record file linked out of its folder.
    newest = max((root / "lake/good/iterations").glob("*.json"))
    (outside / "iteration.json").write_text(newest.read_text().replace(
        '"flywheelName": "good"', '"flywheelName": "bad"'))
    return root


# --------------------------------------------------------------------------------------------
# What a case can plant


def spec(text: str | bytes, file: str = BAD_SPEC) -> Callable[[Path], None]:
    def arrange(repo: Path) -> None:
        path = repo / file
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode() if isinstance(text, str) else text)

    return arrange


def edit(old: str, new: str, text: str = BAD) -> str:
    """``text`` with the single occurrence of ``old`` replaced (so a typo in a case fails)."""
    assert text.count(old) == 1, f"{old!r} must occur exactly once"
    return text.replace(old, new)


def rows(tail: bytes) -> Callable[[Path], None]:
    """The bad flywheel's valid spec; its TRAIN file is two good rows and then ``tail``."""
    def arrange(repo: Path) -> None:
        spec(BAD)(repo)
        (repo / BAD_TRAIN).write_bytes(VALID_ROWS + tail)

    return arrange


def data_file(content: bytes) -> Callable[[Path], None]:
    """The bad flywheel's valid spec; its TRAIN file holds exactly ``content``."""
    def arrange(repo: Path) -> None:
        spec(BAD)(repo)
        (repo / BAD_TRAIN).write_bytes(content)

    return arrange


def then(*steps: Callable[[Path], None]) -> Callable[[Path], None]:
    def arrange(repo: Path) -> None:
        for step in steps:
            step(repo)

    return arrange


def symlink(link: str, target: str | Callable[[Path], Path]) -> Callable[[Path], None]:
    """``repo/link`` -> ``target`` (a path as written, or computed from the repository)."""
    def arrange(repo: Path) -> None:
        path = repo / link
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.symlink_to(target if isinstance(target, str) else target(repo))

    return arrange


def hard_link(link: str, target: str) -> Callable[[Path], None]:
    """``repo/link`` replaced by a hard link to ``repo/target``: one file (inode), two names."""
    def arrange(repo: Path) -> None:
        (repo / link).unlink()
        os.link(repo / target, repo / link)

    return arrange


def outside(name: str = "") -> Callable[[Path], Path]:
    """A file (or, without a name, the folder) next to the repository, outside it."""
    return lambda repo: repo.parent / "outside" / name


def replace_with_directory(relative: str) -> Callable[[Path], None]:
    def arrange(repo: Path) -> None:
        path = repo / relative
        path.unlink(missing_ok=True)
        path.mkdir(parents=True)

    return arrange


def fifo(relative: str) -> Callable[[Path], None]:
    def arrange(repo: Path) -> None:
        path = repo / relative
        path.unlink(missing_ok=True)
        os.mkfifo(path)

    return arrange


def sparse(relative: str, size: int) -> Callable[[Path], None]:
    def arrange(repo: Path) -> None:
        with (repo / relative).open("wb") as handle:
            handle.truncate(size)

    return arrange


def remove(relative: str) -> Callable[[Path], None]:
    return lambda repo: (repo / relative).unlink()


def billion_laughs(levels: int = 9) -> str:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in range(1, levels):
        refs = ", ".join([f"*a{level - 1}"] * 9)
        lines.append(f"a{level}: &a{level} [{refs}]")
    return "name: bad\n" + "\n".join(lines) + "\n"


def block_nesting(depth: int) -> str:
    return "name: bad\nx:\n" + "".join("  " * (i + 1) + f"k{i}:\n" for i in range(depth))


# A flywheel "bad" with a lake of its own: a copy of good's (same spec and data, so it is up to
# date and a reconcile reads its records but loads no model), then one record or file spoiled.


def clone_good_as_bad(repo: Path) -> None:
    (repo / BAD_SPEC).write_text(good_spec(["v1", "test", "v2"]).replace("name: good",
                                                                           "name: bad"))
    shutil.copytree(repo / "lake/good", repo / "lake/bad")
    for path in (repo / "lake/bad").rglob("*.json"):
        text = path.read_text().replace('"flywheelName": "good"', '"flywheelName": "bad"')
        path.write_text(text.replace("lake/good/", "lake/bad/"))


CLONE_END = good_spec(["v1", "test", "v2"]).count("\n") + 1  # a line appended to bad's spec


def append_to_bad_spec(text: str) -> Callable[[Path], None]:
    def arrange(repo: Path) -> None:
        with (repo / BAD_SPEC).open("a") as handle:
            handle.write(text)

    return arrange


def edit_json(relative: str, **changes: object) -> Callable[[Path], None]:
    def arrange(repo: Path) -> None:
        path = repo / relative
        record = json.loads(path.read_text())
        record.update(changes)
        path.write_text(json.dumps(record, indent=2))

    return arrange


def model_bytes(content: Callable[[Path], bytes], *, record_hash: bool) -> Callable[[Path], None]:
    """Replace bad's v2 model; with ``record_hash`` its version record is updated to match (an
    attacker who can push a file can push the record too), so the sha256 check alone cannot
    be what refuses it."""
    def arrange(repo: Path) -> None:
        model = repo / "lake/bad/models/v2.skops"
        data = content(model)
        model.unlink()  # it may be a link into DVC's cache: never write through it
        model.write_bytes(data)
        if record_hash:
            edit_json("lake/bad/versions/v2.json", sha256=hashlib.sha256(data).hexdigest(),
                      size=len(data))(repo)

    return arrange


def bad_iteration_due(repo: Path) -> None:
    """bad (a clone of good) gets a third TRAIN dataset, so an iteration (and a `dvc add` of
    its models folder) is due."""
    write_csv(repo / "data/good/v3.csv", bundled_rows("debian-sections", "train-v3.csv",
                                                      LABELS, 6))
    (repo / BAD_SPEC).write_text(good_spec(["v1", "test", "v2", "v3"]).replace("name: good",
                                                                               "name: bad"))


def swap_model(version: str, other: str) -> Callable[[Path], None]:
    def arrange(repo: Path) -> None:
        model = repo / f"lake/bad/models/{version}.skops"
        data = (repo / f"lake/bad/models/{other}.skops").read_bytes()
        model.unlink()  # it may be a link into DVC's cache: never write through it
        model.write_bytes(data)

    return arrange


class _Payload:
    """Pickles to ``os.system('touch PWNED')``: loading it would run a command."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, ("touch PWNED",)


def flip_a_byte(model: Path) -> bytes:
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    return bytes(data)


def untrusted_skops(model: Path) -> bytes:
    """A real skops archive whose schema names ``os.system`` among its types."""
    scratch = model.with_name("scratch.zip")
    with zipfile.ZipFile(model) as source, zipfile.ZipFile(scratch, "w") as target:
        for item in source.infolist():
            data = source.read(item)
            if item.filename == "schema.json":
                schema = json.loads(data)
                schema["steps"] = {"__class__": "system", "__module__": "os", "content": []}
                data = json.dumps(schema).encode()
            target.writestr(item, data)
    data = scratch.read_bytes()
    scratch.unlink()
    return data


def write_file(relative: str, content: str | bytes) -> Callable[[Path], None]:
    def arrange(repo: Path) -> None:
        path = repo / relative
        path.unlink()  # never write through a link
        path.write_bytes(content.encode() if isinstance(content, str) else content)

    return arrange


def an_iteration(repo: Path) -> str:
    """bad's newest iteration record, relative to the repository."""
    return max((repo / "lake/bad/iterations").glob("*.json")).relative_to(repo).as_posix()


def on_iteration(change: Callable[[str], Callable[[Path], None]]) -> Callable[[Path], None]:
    return lambda repo: change(an_iteration(repo))(repo)


#: 100,000 nested brackets: Python's json module raises RecursionError on far fewer.
DEEP_JSON = "[" * 100_000 + "]" * 100_000


def rename_version(old: str, new: str) -> Callable[[Path], None]:
    """bad's version record ``old`` renamed (and rewritten) as version ``new``."""
    def arrange(repo: Path) -> None:
        versions = repo / "lake/bad/versions"
        record = json.loads((versions / f"{old}.json").read_text())
        record.update(version=new, file=f"lake/bad/models/{new}.skops")
        (versions / f"{old}.json").unlink()
        (versions / f"{new}.json").write_text(json.dumps(record))

    return arrange


def nested_schema(model: Path) -> bytes:
    """A real model file whose ``schema.json`` is 100,000 brackets deep."""
    return _rewrite_archive(model, {"schema.json": DEEP_JSON.encode()})


def zip_bomb(model: Path) -> bytes:
    """A real model file whose first array is 64 MiB of zeros deflated to 64 KiB (a real bomb
    unpacks gigabytes: the bound is the same)."""
    array = io.BytesIO()
    np.save(array, np.zeros(8 * 1024**2))
    return _rewrite_archive(model, {"1.npy": array.getvalue()}, deflate="1.npy")


def huge_array(model: Path) -> bytes:
    """A real model file one of whose arrays claims a terabyte in its header (numpy would
    allocate it all before reading the 80 bytes that follow)."""
    header = b"{'descr': '<f8', 'fortran_order': False, 'shape': (137438953472,), }"
    header += b" " * (118 - len(header)) + b"\n"
    return _rewrite_archive(model, {"1.npy": b"\x93NUMPY\x01\x00" + bytes([len(header), 0])
                                    + header + bytes(80)})


def _rewrite_archive(model: Path, members: dict[str, bytes], deflate: str = "") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(model) as source, zipfile.ZipFile(buffer, "w") as target:
        for item in source.infolist():
            if item.filename not in members:
                target.writestr(item, source.read(item))
        for name, data in members.items():
            target.writestr(name, data, compress_type=zipfile.ZIP_DEFLATED if name == deflate
                            else zipfile.ZIP_STORED)
    return buffer.getvalue()


# --------------------------------------------------------------------------------------------
# The corpus


@dataclass(frozen=True)
class Case:
    """One hostile input and the error it must produce.

    ``file`` is the file the error line must start with; ``line``, when given, must follow it
    (the spec line of a field, or the first line of a CSV row); ``field``, when given, must be
    named. ``commands`` must each exit non-zero with that error (``reconcile`` is always run
    too, to prove the good flywheel is reconciled either way).
    """

    id: str
    arrange: Callable[[Path], None]
    message: str
    file: str = BAD_SPEC
    line: int | None = None
    field: str | None = None
    commands: tuple[str, ...] = ("validate", "reconcile")
    #: A bad row: also refused by ``all_views(check_data=True)``, the rows check behind
    #: ``validate`` (the command itself reads rows once cli.py passes ``check_data=True``).
    rows: bool = False


def bad_rows(id: str, arrange: Callable[[Path], None], message: str,
             line: int | None = None) -> Case:
    return Case(id, arrange, message, BAD_TRAIN, line, commands=("reconcile", "validate"),
                rows=True)


SPEC_CASES = [
    # YAML bombs, nesting and tags
    Case("billion-laughs", spec(billion_laughs()), "too many YAML nodes"),
    Case("recursive-alias", spec("name: bad\nx: &a [*a]\n"), "nested deeper", line=2),
    Case("deep-block-nesting", spec(block_nesting(40)), "nested deeper than 32 levels", line=34),
    Case("deep-flow-nesting", spec("name: bad\nx: " + "[" * 50_000 + "\n"), "nested deeper",
         line=2),
    Case("python-object-apply-tag",
         spec(edit("name: bad", "name: !!python/object/apply:os.system ['touch PWNED']")),
         "YAML tag 'tag:yaml.org,2002:python/object/apply:os.system' is not allowed", line=1),
    Case("python-name-tag", spec(BAD + "x: !!python/name:os.system ''\n"), "is not allowed",
         line=END, field="x"),
    Case("local-include-tag", spec(BAD + "x: !include /etc/passwd\n"), "'!include' is not "
         "allowed", line=END, field="x"),
    Case("set-tag", spec(edit("[games, mail]", "!!set {games, mail}")), "is not allowed",
         line=4, field="task.labels"),
    Case("binary-tag", spec(BAD + "x: !!binary aGk=\n"), "is not allowed", line=END),
    Case("str-tag-on-a-list", spec(edit("[games, mail]", "!!str [games, mail]")),
         "does not fit a sequence", line=4, field="task.labels"),
    Case("impossible-timestamp", spec(BAD + "description: 2001-13-45\n"),
         "cannot read '2001-13-45' as timestamp", line=END, field="description"),
    Case("integer-of-5000-digits",
         spec(edit("minDocumentsPerLabel: 3", "minDocumentsPerLabel: 0x" + "f" * 5000)),
         "is out of range", line=5, field="task.minDocumentsPerLabel"),
    # size
    Case("huge-spec-file", spec(BAD + ("#" + "x" * 1023 + "\n") * 300), "the limit is 262144"),
    Case("very-long-line", spec(BAD + "description: " + "x" * 200_000 + "\n"),
         "at most 2048 characters", line=END, field="description"),
    # unknown fields and wrong types
    Case("unknown-top-level-field", spec(BAD + "colour: red\n"), "unknown field", line=END,
         field="colour"),
    Case("unknown-field-in-task", spec(edit("  mode: MULTI_CLASS", "  mode: MULTI_CLASS\n"
                                            "  colour: red")),
         "unknown field", line=4, field="task.colour"),
    Case("unknown-field-in-dataset", spec(edit("    type: TEST", "    type: TEST\n    size: 3")),
         "unknown field", line=12, field="datasets[1].size"),
    Case("unknown-field-in-features", spec(BAD + "recipe:\n  features:\n    minDF: 2\n"),
         "unknown field", line=END + 2, field="recipe.features.minDF"),
    Case("labels-not-a-list", spec(edit("[games, mail]", "games")), "valid list", line=4,
         field="task.labels"),
    Case("count-given-text", spec(edit("PerLabel: 3", "PerLabel: three")), "valid integer",
         line=5, field="task.minDocumentsPerLabel"),
    Case("datasets-a-mapping", spec(BAD.split("datasets:")[0] + "datasets: {train: x}\n"),
         "valid list", line=6, field="datasets"),
    Case("name-a-number", spec(edit("name: bad", "name: 123")), "valid string", line=1,
         field="name"),
    Case("infinite-C", spec(BAD + "recipe:\n  C: .inf\n"), "finite number", line=END + 1,
         field="recipe.C"),
    Case("seed-beyond-32-bits", spec(BAD + "recipe:\n  seed: 1099511627776\n"),
         "less than or equal to 4294967295", line=END + 1, field="recipe.seed"),
    # duplicates
    Case("duplicate-top-level-key", spec(BAD + "name: other\n"), "duplicate key 'name'",
         line=END, field="name"),
    Case("duplicate-nested-key", spec(edit("  mode: MULTI_CLASS", "  mode: MULTI_CLASS\n"
                                           "  mode: MULTI_LABEL")),
         "duplicate key 'mode'", line=4, field="task.mode"),
    Case("duplicate-flywheel-name-across-files",
         then(spec(BAD), spec(BAD, "specs/bad-copy.yaml")),
         "flywheel name is also declared in specs/bad-copy.yaml", line=1, field="name"),
    Case("duplicate-dataset-name", spec(edit("- name: test", "- name: train")),
         "dataset name 'train' is used twice", line=10, field="datasets[1].name"),
    Case("duplicate-dataset-path", spec(edit("path: data/bad/test.csv",
                                             "path: data/bad/./train.csv")),
         "dataset path 'data/bad/train.csv' is used twice", line=12, field="datasets[1].path"),
    # where a dataset may live
    Case("path-traversal", spec(edit("data/bad/train.csv", "../outside/train.csv")),
         "must stay inside the repository's data/ folder", line=9, field="datasets[0].path"),
    Case("path-traversal-through-data", spec(edit("data/bad/train.csv",
                                                  "data/../../outside/train.csv")),
         "must stay inside the repository's data/ folder", line=9, field="datasets[0].path"),
    Case("absolute-path", spec(edit("data/bad/train.csv", "/etc/passwd")), "is absolute",
         line=9, field="datasets[0].path"),
    Case("backslash-path", spec(edit("data/bad/train.csv", "'data\\..\\..\\etc\\passwd'")),
         "use forward slashes", line=9, field="datasets[0].path"),
    Case("file-symlink-out-of-the-repo",
         then(spec(BAD), symlink(BAD_TRAIN, outside("train.csv"))),
         "resolves outside the repository's data/ folder", line=9, field="datasets[0].path"),
    Case("file-symlink-out-of-data",
         then(spec(BAD), symlink(BAD_TRAIN, "../../specs/good.yaml")),
         "resolves outside the repository's data/ folder", line=9, field="datasets[0].path"),
    Case("directory-symlink-out-of-the-repo",
         then(spec(BAD), symlink("data/bad", outside())),
         "resolves outside the repository's data/ folder", line=9, field="datasets[0].path"),
    Case("directory-symlink-into-the-lake",
         then(spec(edit("data/bad/train.csv", "data/bad/status.json")),
              symlink("data/bad", "../lake/good")),
         "resolves outside the repository's data/ folder", line=9, field="datasets[0].path"),
    # a TRAIN dataset that is the TEST file under another name: refused, whatever
    # allowTestOverlap says (it accepts shared documents, not one file declared twice)
    Case("train-is-a-symlink-to-test", then(spec(BAD), symlink(BAD_TRAIN, "test.csv")),
         "data/bad/test.csv is the same file as datasets[0] 'train' (data/bad/train.csv), "
         "through a symlink or a hard link", line=12, field="datasets[1].path"),
    Case("train-is-a-hard-link-to-test", then(spec(BAD), hard_link(BAD_TRAIN,
                                                                   "data/bad/test.csv")),
         "is the same file as datasets[0] 'train'", line=12, field="datasets[1].path"),
    Case("hard-link-with-allow-test-overlap",
         then(spec(edit("    type: TRAIN\n", "    type: TRAIN\n    allowTestOverlap: true\n")),
              hard_link(BAD_TRAIN, "data/bad/test.csv")),
         "is the same file as datasets[0] 'train'", line=13, field="datasets[1].path"),
    Case("symlink-loop", then(spec(BAD), symlink(BAD_TRAIN, "train.csv")),
         "cannot be resolved", line=9, field="datasets[0].path"),
    Case("spec-symlink-out-of-the-repo", symlink(BAD_SPEC, outside("spec.yaml")),
         "resolves outside the repository's specs/ folder"),
    Case("missing-dataset-file", then(spec(BAD), remove(BAD_TRAIN)),
         "dataset file not found: data/bad/train.csv", line=9, field="datasets[0].path"),
    Case("dataset-is-a-directory", then(spec(BAD), replace_with_directory(BAD_TRAIN)),
         "data/bad/train.csv is a directory", line=9, field="datasets[0].path"),
    Case("dataset-is-a-fifo", then(spec(BAD), fifo(BAD_TRAIN)), "is not a regular file",
         line=9, field="datasets[0].path"),
    Case("dataset-over-2-GiB", then(spec(BAD), sparse(BAD_TRAIN, 2 * 1024**3 + 1)),
         "is 2147483649 bytes; the limit is 2147483648", line=9, field="datasets[0].path"),
    # encodings and document shapes of the spec file
    Case("non-utf8-spec", spec(BAD.encode().replace(b"name: bad", b"name: b\xe9d")),
         "not valid UTF-8", line=1),
    Case("utf16-spec", spec(BAD.encode("utf-16")), "not valid UTF-8", line=1),
    Case("several-documents", spec(BAD + "---\nname: other\n"), "several YAML documents",
         line=END + 1),
    Case("empty-spec", spec(""), "the file is empty", line=1),
    Case("comment-only-spec", spec("# name: bad\n"), "the file is empty", line=1),
    Case("spec-is-a-list", spec("- name: bad\n"), "a spec must be a YAML mapping", line=1),
    Case("spec-is-a-scalar", spec("bad\n"), "a spec must be a YAML mapping", line=1),
    Case("spec-is-a-directory", replace_with_directory(BAD_SPEC), "is a directory"),
    Case("spec-is-a-fifo", then(spec(""), fifo(BAD_SPEC)), "is not a regular file"),
    Case("name-with-dot-dot", spec(edit("name: bad", "name: ../x")), "should match pattern",
         line=1, field="name"),
    Case("name-with-slash", spec(edit("name: bad", "name: a/b")), "should match pattern",
         line=1, field="name"),
    # labels and pins
    Case("formula-label-in-spec", spec(edit("[games, mail]", "[\"=cmd|' /C calc'!A0\", mail]")),
         "starts with '=': a spreadsheet would run it as a formula", line=4,
         field="task.labels[0]"),
    Case("pin-to-a-missing-version", spec(BAD + "activeModel: v9\n"),
         "version v9 does not exist (versions: none yet)", line=END, field="activeModel"),
    Case("pin-to-v2-newline", spec(BAD + 'activeModel: "v2\\n"\n'), "should match pattern",
         line=END, field="activeModel"),
]

CSV_CASES = [
    bad_rows("non-utf8-csv", rows(b"games,caf\xe9 game\n"), "not valid UTF-8", 3),
    bad_rows("nul-bytes-csv", rows(b"mail,\x00\x01\x02binary\n"), "NUL byte", 3),
    bad_rows("png-as-csv", data_file(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"),
             "not valid UTF-8", 1),
    bad_rows("row-with-too-few-columns", rows(b"games\n"),
             "expected 2 columns (label,text), found 1", 3),
    bad_rows("row-with-too-many-columns", rows(b"games,a game, with commas\n"),
             "found 3; quote the text", 3),
    bad_rows("unclosed-quote", rows(b'games,"a game\nmail,more\n'), "malformed CSV", 3),
    bad_rows("formula-label-equals", rows(b"=HYPERLINK(A1),a game\n"),
             "unknown label '=HYPERLINK(A1)'", 3),
    bad_rows("formula-label-plus", rows(b"+cmd|' /C calc'!A0,a game\n"),
             "unknown label \"+cmd|' /C calc'!A0\"", 3),
    bad_rows("formula-label-minus", rows(b"-2+3+cmd|' /C calc'!A0,a game\n"),
             "unknown label \"-2+3+cmd", 3),
    bad_rows("formula-label-at", rows(b"@SUM(1+1),a game\n"), "unknown label '@SUM(1+1)'", 3),
    bad_rows("unknown-label", rows(b"sound,an audio player\n"),
             "unknown label 'sound' (declared: games, mail)", 3),
    bad_rows("empty-dataset", data_file(b""), "the dataset has no documents"),
    bad_rows("header-only", data_file(b"label,text\n"), "looks like a header row", 1),
    bad_rows("whitespace-only", data_file(b"  \n\n\t\n \r\n"), "the dataset has no documents"),
    bad_rows("document-over-a-million-characters", rows(b"games," + b"x" * 1_000_001 + b"\n"),
             "document has 1000001 characters; the limit is 1000000", 3),
    bad_rows("label-cell-of-200k-characters", rows(b"g" * 200_000 + b",a game\n"),
             "unknown label 'ggg", 3),
    bad_rows("label-with-a-space-before", rows(b" games,a game\n"),
             "label ' games' has leading or trailing spaces; did you mean 'games'?", 3),
    bad_rows("label-with-a-space-after", rows(b"mail ,a mail reader\n"),
             "label 'mail ' has leading or trailing spaces; did you mean 'mail'?", 3),
    bad_rows("quoted-label-with-a-tab", rows(b'"games\t",a game\n'),
             "label 'games\\t' has leading or trailing spaces; did you mean 'games'?", 3),
    bad_rows("multi-label-spaces-around-the-delimiter",
             then(rows(b"games | mail,a game with mail\n"),
                  spec(edit("  mode: MULTI_CLASS", "  mode: MULTI_LABEL"))),
             "label 'games ' has leading or trailing spaces; did you mean 'games'?", 3),
]

#: Every command that reads a flywheel's records: each must fail with the record's one line.
READERS = ("classify", "validate", "reconcile", "list", "describe", "iterations", "iteration",
           "plan")

LAKE_CASES = [
    Case("tampered-model-file", then(clone_good_as_bad, model_bytes(flip_a_byte,
                                                                    record_hash=False)),
         "model file was modified: sha256", "lake/bad/models/v2.skops", commands=("classify",)),
    Case("pickle-model-file",
         then(clone_good_as_bad, model_bytes(lambda _: pickle.dumps(_Payload()),
                                             record_hash=True)),
         "not a skops model file (pickle and other formats are refused)",
         "lake/bad/models/v2.skops", commands=("classify",)),
    Case("skops-file-with-an-untrusted-type",
         then(clone_good_as_bad, model_bytes(untrusted_skops, record_hash=True)),
         "model file holds untrusted types: os.system", "lake/bad/models/v2.skops",
         commands=("classify",)),
    Case("model-file-is-a-link-to-dev-zero",
         then(clone_good_as_bad, symlink("lake/bad/models/v2.skops", "/dev/zero")),
         "model file is not a regular file", "lake/bad/models/v2.skops", commands=("classify",)),
    Case("version-record-points-out-of-the-lake",
         then(clone_good_as_bad, edit_json("lake/bad/versions/v2.json", file="/dev/zero")),
         "corrupt lake record: file must be lake/bad/models/v2.skops",
         "lake/bad/versions/v2.json", commands=("classify", "validate", "reconcile")),
    Case("version-record-with-a-bad-name",
         then(clone_good_as_bad, lambda repo: (repo / "lake/bad/versions/v2.json").rename(
             repo / "lake/bad/versions/vx.json")),
         "corrupt lake record: version 'vx' is not a version like v1",
         "lake/bad/versions/vx.json", commands=("classify", "validate", "reconcile")),
    Case("iteration-record-with-a-formula-version",
         then(clone_good_as_bad, lambda repo: edit_json(
             next((repo / "lake/bad/iterations").glob("*.json")).relative_to(repo).as_posix(),
             trainedModelVersion="=1+1")(repo)),
         "corrupt lake record: trained_model_version '=1+1' is not a version like v1",
         "lake/bad/iterations/", commands=("classify", "validate", "reconcile")),
    Case("pin-to-a-version-the-lake-does-not-have",
         then(clone_good_as_bad, append_to_bad_spec("activeModel: v9\n")),
         "version v9 does not exist (versions: v1, v2); the active model stays v2",
         line=CLONE_END, field="activeModel"),
    Case("lake-folder-is-a-symlink-out-of-the-repo",
         then(spec(BAD), symlink("lake/bad", outside())),
         "resolves outside the repository's lake/ folder", "lake/bad"),
    Case("lake-records-folder-is-a-symlink-out-of-the-repo",
         then(clone_good_as_bad, lambda repo: shutil.rmtree(repo / "lake/bad/iterations"),
              symlink("lake/bad/iterations", outside())),
         "resolves outside the repository's lake/ folder", "lake/bad/iterations",
         commands=("classify", "validate", "reconcile")),
    Case("model-file-swapped-for-another-version",
         then(clone_good_as_bad, bad_iteration_due, swap_model("v2", "v1")),
         "model file does not match its version record (recorded sha256 ",
         "lake/bad/models/v2.skops", commands=("reconcile",)),
    Case("active-model-file-missing",
         then(clone_good_as_bad, bad_iteration_due, remove("lake/bad/models/v2.skops")),
         "model file of v2 is missing (recorded sha256 ", "lake/bad/models/v2.skops",
         commands=("reconcile",)),
    Case("version-record-deleted",
         then(clone_good_as_bad, bad_iteration_due, remove("lake/bad/versions/v2.json")),
         "no version record describes this model file (lake/bad/versions/v2.json is missing)",
         "lake/bad/models/v2.skops", commands=("reconcile",)),
    Case("versions-folder-is-a-file",
         then(clone_good_as_bad, lambda repo: shutil.rmtree(repo / "lake/bad/versions"),
              lambda repo: (repo / "lake/bad/versions").write_text("v2\n")),
         "is not a folder: the lake keeps one record per file in it", "lake/bad/versions",
         commands=("classify", "validate", "reconcile")),
    Case("status-of-another-flywheel",
         then(clone_good_as_bad, edit_json("lake/bad/status.json", flywheelName="good")),
         "corrupt lake record: flywheelName is not 'bad'", "lake/bad/status.json",
         commands=("classify", "validate", "reconcile")),
    # One bad record is one line for its flywheel, in every command that reads records
    Case("status-nested-100000-deep",
         then(clone_good_as_bad, write_file("lake/bad/status.json", DEEP_JSON)),
         "corrupt lake record: JSON nested deeper than 32 levels (at line 1)",
         "lake/bad/status.json", commands=READERS),
    Case("iteration-record-nested-100000-deep",
         then(clone_good_as_bad, on_iteration(lambda it: write_file(it, DEEP_JSON))),
         "corrupt lake record: JSON nested deeper than 32 levels", "lake/bad/iterations/",
         commands=READERS),
    Case("version-record-nested-100000-deep",
         then(clone_good_as_bad, write_file("lake/bad/versions/v1.json",
                                            '{"version": "v1", "x": ' + DEEP_JSON + "}")),
         "corrupt lake record: JSON nested deeper than 32 levels", "lake/bad/versions/v1.json",
         commands=READERS),
    Case("nan-in-a-finished-iteration-record",
         then(clone_good_as_bad, on_iteration(lambda it: edit_json(
             it, trainedModelMetrics={"AverageF1Score": float("nan")}))),
         "corrupt lake record: NaN is not a finite number", "lake/bad/iterations/",
         commands=READERS),
    Case("infinity-as-1e999-in-a-version-record",
         then(clone_good_as_bad, lambda repo: (repo / "lake/bad/versions/v1.json").write_text(
             (repo / "lake/bad/versions/v1.json").read_text().replace(
                 '"AverageF1Score": ', '"AverageF1Score": 1e999, "x": ', 1))),
         "corrupt lake record: 1e999 is not a finite number", "lake/bad/versions/v1.json",
         commands=READERS),
    Case("evaluation-record-nested-100000-deep",
         then(clone_good_as_bad, lambda repo: write_file(
             max((repo / "lake/bad/evaluation").glob("*/trained.json")).relative_to(
                 repo).as_posix(), DEEP_JSON)(repo)),
         "corrupt lake record: JSON nested deeper than 32 levels", "lake/bad/evaluation/",
         commands=("iteration-table",)),
    # Trust boundaries: a record linked out of the repository; patterns that match "v2\n"
    Case("status-json-symlink-out-of-the-repo",
         then(clone_good_as_bad, symlink("lake/bad/status.json", outside("status.json"))),
         "resolves outside the repository's lake/ folder", "lake/bad/status.json",
         commands=READERS),
    Case("iteration-record-symlink-out-of-the-repo",
         then(clone_good_as_bad, on_iteration(lambda it: symlink(it, outside("iteration.json")))),
         "resolves outside the repository's lake/ folder", "lake/bad/iterations/",
         commands=READERS),
    Case("status-active-model-v2-newline",
         then(clone_good_as_bad, edit_json("lake/bad/status.json", activeModel="v2\n")),
         "corrupt lake record: activeModel 'v2\\n' is not a version like v1",
         "lake/bad/status.json", commands=READERS),
    Case("iteration-record-version-v2-newline",
         then(clone_good_as_bad, on_iteration(lambda it: edit_json(
             it, trainedModelVersion="v2\n"))),
         "corrupt lake record: trained_model_version 'v2\\n' is not a version like v1",
         "lake/bad/iterations/", commands=READERS),
    Case("version-record-v2-newline",
         then(clone_good_as_bad, rename_version("v2", "v2\n")),
         "corrupt lake record: version 'v2\\n' is not a version like v1",
         "lake/bad/versions/v2\\n.json", commands=READERS),
    Case("promotion-to-v2-newline",
         then(clone_good_as_bad, lambda repo: edit_json("lake/bad/status.json", promotions=[
             {**json.loads((repo / "lake/bad/status.json").read_text())["promotions"][-1],
              "version": "v2\n"}])(repo)),
         "corrupt lake record: promotions.0.version: String should match pattern",
         "lake/bad/status.json", commands=READERS),
    # Model files whose hash is recorded, yet would exhaust the stack or the memory
    Case("model-file-with-a-schema-nested-100000-deep",
         then(clone_good_as_bad, model_bytes(nested_schema, record_hash=True)),
         "model file schema.json: JSON nested deeper than 64 levels",
         "lake/bad/models/v2.skops", commands=("classify",)),
    Case("model-file-zip-bomb",
         then(clone_good_as_bad, model_bytes(zip_bomb, record_hash=True)),
         "would unpack 67108992 bytes from", "lake/bad/models/v2.skops",
         commands=("classify",)),
    Case("model-file-array-claiming-a-terabyte",
         then(clone_good_as_bad, model_bytes(huge_array, record_hash=True)),
         "claims an array of 1099511627776 bytes", "lake/bad/models/v2.skops",
         commands=("classify",)),
]

CASES = SPEC_CASES + CSV_CASES + LAKE_CASES


def test_the_corpus_is_large_and_its_ids_unique() -> None:
    assert len(CASES) >= 50
    assert len({case.id for case in CASES}) == len(CASES)


# --------------------------------------------------------------------------------------------
# The checks


def snapshot(repo: Path) -> dict[str, object]:
    """Every file's bytes (a link's target, a big or special file's size), minus what is local
    scratch (git's and DVC's internals, ``.flywheel/`` caches and locks)."""
    files: dict[str, object] = {}
    for folder, dirs, names in os.walk(repo):
        relative_folder = Path(folder).relative_to(repo)
        if relative_folder.parts[:1] in ((".git",), (".flywheel",), (".dvc",)):
            dirs.clear()
            continue
        for name in names + [d for d in dirs if (Path(folder) / d).is_symlink()]:
            path = Path(folder) / name
            key = (relative_folder / name).as_posix()
            info = path.lstat()
            if path.is_symlink():
                files[key] = ("link", os.readlink(path))
            elif not path.is_file() or info.st_size > 4 * 1024**2:
                files[key] = ("special-or-big", info.st_mode, info.st_size)
            else:
                files[key] = path.read_bytes()
    return files


def error_lines(command: str, run: Run) -> list[str]:
    """The errors a command reported, as the lines a user reads."""
    assert "Traceback" not in run.stderr, run.stderr
    if command == "reconcile":
        report = run.json()
        return report["Errors"] + [f["Error"] for f in report["Flywheels"] if f["Error"]]
    if command == "validate":
        return run.json()["Errors"]
    return [line.removeprefix("error: ") for line in run.stderr.splitlines()
            if line.startswith("error: ")]


def check_error(case: Case, where: str, lines: list[str]) -> None:
    found = [line for line in lines if case.message in line]
    assert found, f"{where}: no error with {case.message!r} in {lines}"
    line = found[0]
    assert "\n" not in line and len(line) < 600, line
    assert line.startswith(case.file), line
    if case.line is not None:
        assert line.startswith(f"{case.file}:{case.line}: "), line
    if case.field is not None:
        assert f": {case.field}: " in line, line


COMMANDS = {
    "validate": ("validate", "--output", "json"),
    "reconcile": ("reconcile", "--output", "json", "--log-format", "plain"),
    "classify": ("classify", "bad", "an arcade game with levels"),
    "list": ("list",),
    "describe": ("describe", "bad", "--output", "json"),
    "iterations": ("iterations", "bad", "--output", "json"),
    "iteration": ("iteration", "bad", "latest", "--output", "json"),
    "iteration-table": ("iteration", "bad", "latest"),  # the table reads the evaluations
    "plan": ("plan",),
}


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_hostile_input_is_refused_alone(base: Path, tmp_path: Path, case: Case) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(base, repo, symlinks=True)
    shutil.copytree(base.parent / "outside", tmp_path / "outside")  # real targets for symlinks
    good_before = snapshot(repo / "lake/good")
    outside_before = snapshot(tmp_path / "outside")
    (repo / "specs/good.yaml").write_text(good_spec(["v1", "test", "v2"], pin="v1"))
    case.arrange(repo)
    before = snapshot(repo)

    # The commands run side by side (validate and classify only read), to halve the wall time.
    commands = dict.fromkeys([*case.commands, "reconcile"])
    started = {command: start(repo, *COMMANDS[command]) for command in commands}
    runs = {command: finish(process) for command, process in started.items()}
    for command in case.commands:
        run = runs[command]
        assert run.code != 0, f"{command} exited 0\n{run.stdout}\n{run.stderr}"
        check_error(case, command, error_lines(command, run))
    if "reconcile" not in case.commands:  # the bad flywheel is up to date: nothing to refuse
        assert runs["reconcile"].code == 0, runs["reconcile"].stderr
        assert "Traceback" not in runs["reconcile"].stderr
    report = runs["reconcile"].json()
    if case.rows:
        from reconciler.runtime.queries import all_views

        views = all_views(repo, check_data=True)
        check_error(case, "all_views", [str(v.error) for v in views if v.error])

    # The good flywheel was reconciled in the same run: its pin is applied, nothing else moved.
    (good,) = [f for f in report["Flywheels"] if f["FlywheelName"] == "good"]
    assert good["Error"] is None
    assert [(p["version"], p["kind"]) for p in good["Promotions"]] == [("v1", "PIN")]
    status = json.loads((repo / "lake/good/status.json").read_text())
    assert (status["activeModel"], status["pinned"]) == ("v1", True)
    good_after = snapshot(repo / "lake/good")
    assert good_after.pop("status.json") != good_before.pop("status.json")
    assert good_after == good_before
    # Nothing else was written: not for the bad flywheel, not anywhere in the repository.
    after = snapshot(repo)
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert changed == ["lake/good/status.json"]
    assert snapshot(tmp_path / "outside") == outside_before
    assert not (repo / "PWNED").exists()


# --------------------------------------------------------------------------------------------
# Beyond the corpus


def test_a_twin_of_the_good_flywheel_stops_both_and_writes_nothing(base: Path,
                                                                   tmp_path: Path) -> None:
    """Two files naming the same flywheel: neither may silently win, so neither runs."""
    repo = tmp_path / "repo"
    shutil.copytree(base, repo, symlinks=True)
    (repo / "specs/good.yaml").write_text(good_spec(["v1", "test", "v2"], pin="v1"))
    (repo / "specs/evil.yaml").write_text(good_spec(["v1", "test"], pin="v2"))
    before = snapshot(repo)
    run = flywheel(repo, *COMMANDS["reconcile"])
    assert run.code == 1
    assert sorted(error_lines("reconcile", run)) == [
        "specs/evil.yaml:1: name: flywheel name is also declared in specs/good.yaml",
        "specs/good.yaml:1: name: flywheel name is also declared in specs/evil.yaml",
    ]
    assert snapshot(repo) == before


@pytest.mark.parametrize("name", ["../good", "a/b", "..", "x/../../good"])
def test_classify_refuses_a_name_that_is_a_path(base: Path, name: str) -> None:
    run = flywheel(base, "classify", name, "some text")
    assert run.code == 2
    assert "Traceback" not in run.stderr
    assert "is not a flywheel name" in run.stderr


def test_nothing_written_as_csv_carries_a_formula(base: Path) -> None:
    """Document text may start with = + - @ (it is just text; ``good``'s v2 data has such rows),
    but no CSV file the project writes may hold a cell a spreadsheet would run."""
    written = sorted([*(base / "lake").rglob("*.csv"), *(base / "pipelines").rglob("*.csv")])
    assert [p.name for p in written] == ["f1_history.csv", "per_label_f1.csv"]
    for path in written:
        with path.open(encoding="utf-8", newline="") as handle:
            for row in csv.reader(handle):
                for cell in row:
                    assert not cell[:1] or cell[0] not in "=+-@", (path, cell)
    prepared = (base / "pipelines/good/out/train.jsonl").read_text()
    assert "=HYPERLINK(" in prepared  # the text itself was kept as text


@pytest.mark.parametrize("label", ["-1", "+1", "0.5", "a-b", "e=mc2"])
def test_labels_that_are_not_formulas_are_accepted(tmp_path: Path, label: str) -> None:
    from reconciler.adapters.loader import load_spec

    path = tmp_path / BAD_SPEC
    path.parent.mkdir(parents=True)
    path.write_text(edit("[games, mail]", f"['{label}', mail]"))
    assert load_spec(path, tmp_path).spec.task.labels == [label, "mail"]
