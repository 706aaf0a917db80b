"""A one-text ``flywheel classify`` from a cold process, against the same prediction by hand.

*Setup (not timed).* A scratch repository (``flywheel init`` in a temporary folder) holding the
bundled ``debian-sections`` flywheel (its spec and recipe: word 1-2-grams and character 2-5-grams,
a linear SVM, calibrated) with its first TRAIN version and its TEST file; one ``flywheel
reconcile`` trains v1, which the policy promotes.

*Timed*, interleaved, each a fresh process, ``--repeat`` times (default 7):

- ``flywheel classify debian-sections TEXT`` (ours: the CLI, the lake's records read, the model
  file's SHA-256, archive bounds and types checked, the serving form loaded, the text scored);
- the baseline: a bare script that loads the same model file with skops (its types trusted) and
  calls ``predict_proba`` on the text: what the usual scikit-learn stack takes by hand;
- ``python -c pass``: the floor of any Python process.

The target is absolute (issue 15): ours <= 1 s wall. Both give the same label for the text (the
script checks), and the ratio to the baseline is printed.

Usage: ``.venv/bin/python benchmarks/classify_cold.py [--repeat 7] [--text TEXT]``
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

import yaml
from _common import (
    FLYWHEEL,
    PROJECT,
    PYTHON,
    Stats,
    check_environment,
    init_repository,
    machine_note,
    ratio_line,
    run_timed,
)

NAME = "debian-sections"
TARGET_SECONDS = 1.0
DEFAULT_TEXT = "a puzzle game with colourful blocks"

BARE = """\
import json, sys
import skops.io as sio
path, text = sys.argv[1], sys.argv[2]
model = sio.load(path, trusted=sio.get_untrusted_types(file=path))
probabilities = model.predict_proba([text])[0]
classes = [str(c) for c in model.classes_]
print(json.dumps(classes[int(probabilities.argmax())]))
"""


def make_repository(root: Path) -> Path:
    """The bundled flywheel with one TRAIN version, reconciled once; the model file's path."""
    init_repository(root)
    spec = yaml.safe_load((PROJECT / "specs" / f"{NAME}.yaml").read_text("utf-8"))
    spec["datasets"] = [d for d in spec["datasets"]
                        if d["path"].endswith(("/train-v1.csv", "/test.csv"))]
    (root / "specs" / f"{NAME}.yaml").write_text(yaml.safe_dump(spec, sort_keys=False), "utf-8")
    for file in ("train-v1.csv", "test.csv"):
        target = root / "data" / NAME / file
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(PROJECT / "data" / NAME / file, target)
    run_timed([FLYWHEEL, "reconcile", "-o", "json"], cwd=root)
    model = root / "lake" / NAME / "models" / "v1.skops"
    if not model.is_file():
        raise RuntimeError("the reconcile trained no v1")
    return model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--text", default=DEFAULT_TEXT)
    args = parser.parse_args(argv)
    check_environment()
    print(machine_note())
    with tempfile.TemporaryDirectory(prefix="classify-cold-") as scratch:
        root = Path(scratch) / "repo"
        root.mkdir()
        model = make_repository(root)
        print(f"model file: {model.stat().st_size / 1e6:.1f} MB (v1 of {NAME})")
        ours, bare, floor = [], [], []
        labels = set()
        for _ in range(args.repeat):
            done = run_timed([FLYWHEEL, "classify", NAME, args.text, "-o", "json"], cwd=root)
            ours.append(done.seconds)
            labels.add(("ours", json.loads(done.stdout)["Results"][0]["Labels"][0]["Name"]))
            done = run_timed([PYTHON, "-c", BARE, str(model), args.text], cwd=root)
            bare.append(done.seconds)
            labels.add(("bare", json.loads(done.stdout)))
            floor.append(run_timed([PYTHON, "-c", "pass"], cwd=root).seconds)
        ours_stats, bare_stats = Stats(tuple(ours)), Stats(tuple(bare))
        print(f"flywheel classify (cold):          {ours_stats}")
        print(f"bare skops load + predict_proba:   {bare_stats}")
        print(f"python -c pass:                    {Stats(tuple(floor))}")
        print(ratio_line("ours / bare scikit-learn script", ours_stats, bare_stats))
        verdict = "meets" if ours_stats.median <= TARGET_SECONDS else "MISSES"
        print(f"ours: median {ours_stats.median:.3f} s -> {verdict} the target "
              f"<= {TARGET_SECONDS:g} s")
        found = {label for _, label in labels}
        print(f"label for {args.text!r}: {', '.join(sorted(found))}"
              + ("" if len(found) == 1 else "  (DIFFERENT between ours and the bare script!)"))
        return 0 if len(found) == 1 else 1


if __name__ == "__main__":
    raise SystemExit(main())
