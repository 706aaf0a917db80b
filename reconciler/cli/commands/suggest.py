"""``suggest``: which unlabelled documents to label next (active learning).

Two files are written: the labelling file (``--out``, default ``suggestions-NAME.csv`` in the
current folder), exactly Comprehend's classifier CSV (no header, ``label,text`` rows, the
model's guess as the label, to be confirmed or corrected, then declared as a dataset); and a
review file next to it (``NAME.scores.csv``: a header row, then ``rank,line,uncertainty,guess,
probability,strategy,text``). The table (or ``-o json``) shows the same figures.
"""

from __future__ import annotations

import argparse
import csv
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from reconciler.cli.commands import repository
from reconciler.cli.exits import EXIT_OK
from reconciler.errors import FlywheelError

if TYPE_CHECKING:
    from rich.table import Table

    from reconciler.api import Suggestions

#: A progress line on stderr every this many documents read.
PROGRESS_EVERY = 100_000


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("name")
    p.add_argument("--pool", type=Path, required=True, metavar="FILE",
                   help="unlabelled documents: a text file, one per line (blank lines skipped), "
                   "or a .csv with a header row and a 'text' column (or --text-column)")
    p.add_argument("--count", type=int, required=True, metavar="N",
                   help="how many documents to suggest (1..10000)")
    p.add_argument("--strategy", choices=("margin", "entropy", "diverse", "random"),
                   default="diverse", help="diverse (default): the least decided documents "
                   "(margin score), skipping any whose word bigrams overlap an already picked "
                   "one by Jaccard >= 0.5; margin: 1 - (p1 - p2) (multi-label: the label "
                   "closest to 0.5), dropping only near-duplicates (Jaccard >= 0.9); entropy: "
                   "normalised entropy of the probabilities (multi-label: the largest "
                   "per-label entropy), near-duplicates dropped likewise; random: a seeded "
                   "uniform sample (the baseline)")
    p.add_argument("--version", help="a model version other than the active one, e.g. v2")
    p.add_argument("--text-column", metavar="NAME",
                   help="the CSV column holding the text (default 'text'; the pool is read as "
                   "CSV whenever this is given)")
    p.add_argument("--seed", type=int, default=0, help="random's seed (default 0)")
    p.add_argument("--out", type=Path, metavar="FILE",
                   help="the labelling file, Comprehend's label,text CSV (default: "
                   "suggestions-NAME.csv in the current folder; inside the repository or the "
                   "current folder); the review file FILE-stem.scores.csv goes next to it")
    p.add_argument("--force", action="store_true", help="overwrite existing output files")


def suggest(args: argparse.Namespace, out: Console, err: Console) -> int:
    from reconciler import api
    from reconciler.cli.render import print_json

    repo = repository(args)
    target = _target(args.out or Path(f"suggestions-{args.name}.csv"), repo.root)
    review = target.with_name(f"{target.stem}.scores.csv")
    if not args.force:
        for path in (target, review):
            if path.exists():
                raise FlywheelError("exists; give --force to overwrite it", file=path)

    printed = [0]

    def progress(read: int) -> None:
        if read - printed[0] >= PROGRESS_EVERY:
            printed[0] = read
            err.print(f"read {read:,} documents…", highlight=False)

    found = api.suggest(repo, args.name, args.pool, args.count, args.strategy,
                        version=args.version, text_column=args.text_column, seed=args.seed,
                        progress=progress)
    delimiter = "|"
    if found.mode == "MULTI_LABEL":
        view = api.describe_flywheel(repo, args.name)
        if view.spec_file is not None:
            delimiter = view.spec_file.spec.task.label_delimiter
    _write(target, review, found, delimiter)
    if args.output == "json":
        print_json(suggest_response(found, target, review))
    else:
        out.print(suggestions_table(found))
        err.print(f"wrote {target} ({len(found.picked)} rows to label: confirm or correct each "
                  f"label) and {review}", highlight=False, soft_wrap=True, markup=False)
    return EXIT_OK


def _target(path: Path, root: Path) -> Path:
    resolved = (path if path.is_absolute() else Path.cwd() / path).resolve()
    places = (root.resolve(), Path.cwd().resolve())
    if not any(resolved.is_relative_to(place) for place in places):
        raise FlywheelError("--out must be inside the repository or the current folder",
                            file=path)
    if resolved.is_dir():
        raise FlywheelError("--out is a folder; name a file", file=path)
    return resolved


def _write(target: Path, review: Path, found: Suggestions, delimiter: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    for path, header, rows in (
            (target, None, ([delimiter.join(c.guess), c.text] for c in found.picked)),
            (review, ["rank", "line", "uncertainty", "guess", "probability", "strategy", "text"],
             ([rank, c.line, f"{c.score:.4f}", delimiter.join(c.guess),
               f"{c.guess_probability:.4f}", found.strategy, c.text]
              for rank, c in enumerate(found.picked, start=1)))):
        partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with partial.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            if header:
                writer.writerow(header)
            writer.writerows(rows)
        partial.replace(path)


def suggest_response(found: Suggestions, target: Path, review: Path) -> dict[str, Any]:
    return {"FlywheelName": found.name, "ModelVersion": found.version,
            "Strategy": found.strategy, "Pool": found.pool, "DocumentsRead": found.documents,
            "LabellingFile": str(target), "ReviewFile": str(review),
            "Suggestions": [{"Rank": rank, "Line": c.line, "Text": c.text,
                             "Uncertainty": c.score, "Guess": list(c.guess),
                             "GuessScore": c.guess_probability}
                            for rank, c in enumerate(found.picked, start=1)]}


def suggestions_table(found: Suggestions) -> Table:
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"Label next: {len(found.picked)} of {found.documents:,} documents "
                  f"({found.strategy}, {found.version})", title_justify="left")
    for column in ("#", "LINE", "UNCERTAINTY", "GUESS", "P(GUESS)"):
        table.add_column(column, no_wrap=True, justify="right" if column != "GUESS" else "left")
    table.add_column("TEXT", overflow="fold")
    for rank, c in enumerate(found.picked, start=1):
        text = c.text if len(c.text) <= 80 else c.text[:77] + "…"
        table.add_row(str(rank), str(c.line), f"{c.score:.3f}", escape(", ".join(c.guess))
                      or "(none)", f"{c.guess_probability:.3f}", escape(text))
    return table
