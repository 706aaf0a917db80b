"""Recipe quality: the reconciler's recipes vs strong plain scikit-learn baselines (macro-F1).

Datasets (train = every TRAIN file, test = the TEST file):

* ``debian-sections`` (bundled, MULTI_CLASS, 10 labels);
* ``debian-tags`` (bundled, MULTI_LABEL, 7 labels; baselines wrapped one-vs-rest);
* the >= 40k-document Debian corpus (``data/build_debian_corpus.py --full``, split 80/20 by a
  hash of the text exactly as in ``benchmarks/iteration.py``), when it can be built.

Models:

* *flywheel: spec recipe*, the recipe in ``specs/<dataset>.yaml`` (bundled datasets only);
* *flywheel: spec defaults*, a spec with no ``recipe`` (linear-svm, C=1, word 1-2, minDf 1);
* *flywheel: minDf 2*, the defaults with minDf 2 (the recipe ``iteration.py`` uses on 40k);
* *sklearn: TF-IDF + LinearSVC*, the reference of ``data/README.md``;
* *sklearn: TF-IDF + LogisticRegression(C=10, max_iter=2000)* (on the full corpus only with
  ``--large-logreg``: its fit alone takes minutes there);
* *sklearn: TF-IDF + SGDClassifier(loss="modified_huber")*.

The baselines' TF-IDF is ``TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=2)``.
Every row is scored the same way: scikit-learn's macro- and micro-F1 over the declared labels
(``zero_division=0``). The flywheel rows are also scored with the reconciler's own metric
(``reconciler.core.metrics.evaluate``, Comprehend's ``AverageF1Score``) and must agree.

Usage: ``.venv/bin/python benchmarks/recipe_quality.py [--corpus FILE] [--skip-large]
[--large-logreg]``
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from _common import PROJECT, build_full_corpus, machine_note
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.metrics import f1_score
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import Pipeline
from sklearn.svm import LinearSVC

from reconciler.adapters.corpus import load_corpus
from reconciler.adapters.loader import load_spec
from reconciler.core.documents import Corpus
from reconciler.core.metrics import evaluate
from reconciler.core.spec import FlywheelSpec, LinearSvmRecipe, Mode
from reconciler.stages import recipes


@dataclass(frozen=True)
class Row:
    dataset: str
    model: str
    macro_f1: float
    micro_f1: float
    fit_seconds: float
    note: str = ""


@dataclass(frozen=True)
class Data:
    """One dataset, read by the reconciler's own reader (so every model sees the same rows)."""

    name: str
    spec: FlywheelSpec
    corpus: Corpus
    spec_recipe: bool  # whether the spec's recipe is worth a row of its own


def baseline_models(multi_label: bool, *, logreg: bool) -> dict[str, Callable[[], Any]]:
    """Fresh unfitted plain scikit-learn pipelines, by row name."""
    def tfidf() -> TfidfVectorizer:
        return TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=2)

    def wrap(classifier: Any) -> Any:
        return OneVsRestClassifier(classifier) if multi_label else classifier

    models = {
        "sklearn: TF-IDF + LinearSVC": lambda: Pipeline(
            [("tfidf", tfidf()), ("clf", wrap(LinearSVC()))]),
        "sklearn: TF-IDF + LogReg(C=10)": lambda: Pipeline(
            [("tfidf", tfidf()), ("clf", wrap(LogisticRegression(C=10, max_iter=2000)))]),
        "sklearn: TF-IDF + SGD(modified_huber)": lambda: Pipeline(
            [("tfidf", tfidf()), ("clf", wrap(SGDClassifier(loss="modified_huber",
                                                            random_state=0)))]),
    }
    if not logreg:
        del models["sklearn: TF-IDF + LogReg(C=10)"]
    return models


def targets(data: Data, labels: list[frozenset[str]]) -> Any:
    """What scikit-learn takes: label strings (multi-class) or an indicator matrix (multi-label)."""
    if data.spec.task.mode is Mode.MULTI_LABEL:
        return recipes.indicator_matrix(labels, data.spec.task.labels)
    return [next(iter(doc)) for doc in labels]


def score(data: Data, predicted: Any) -> tuple[float, float]:
    """(macro-F1, micro-F1) over the declared labels, scikit-learn's definitions."""
    truth = targets(data, [d.labels for d in data.corpus.test])
    labels: Any = data.spec.task.labels
    if data.spec.task.mode is Mode.MULTI_LABEL:
        labels = list(range(len(labels)))
    return tuple(float(f1_score(truth, predicted, labels=labels, average=average,  # type: ignore
                                zero_division=0)) for average in ("macro", "micro"))


def flywheel_row(data: Data, title: str, recipe: Any) -> Row:
    """Fit a reconciler recipe as the train stage does; check sklearn's F1 = Comprehend's."""
    spec, corpus = data.spec, data.corpus
    pipeline = recipes.build_pipeline(recipe, spec.task.mode)
    train_texts = [d.text for d in corpus.train]
    started = time.perf_counter()
    recipes.fit(pipeline, train_texts, [d.labels for d in corpus.train], spec.task.mode,
                spec.task.labels)
    seconds = time.perf_counter() - started
    predicted = recipes.predict(pipeline, [d.text for d in corpus.test], spec.task.mode,
                                spec.task.labels)
    macro, micro = score(data, targets(data, predicted))
    own = evaluate(spec.task.mode.value, spec.task.labels, [d.labels for d in corpus.test],
                   predicted)
    note = "" if abs(own.average_f1 - macro) < 1e-9 else f"reconciler F1 {own.average_f1:.4f}!"
    return Row(data.name, title, macro, micro, seconds, note)


def baseline_row(data: Data, title: str, make: Callable[[], Any]) -> Row:
    pipeline = make()
    started = time.perf_counter()
    pipeline.fit([d.text for d in data.corpus.train],
                 targets(data, [d.labels for d in data.corpus.train]))
    seconds = time.perf_counter() - started
    macro, micro = score(data, np.asarray(pipeline.predict([d.text for d in data.corpus.test])))
    return Row(data.name, title, macro, micro, seconds)


def rows_for(data: Data, *, logreg: bool = True) -> list[Row]:
    """Every model on one dataset, printing each row as soon as it is done."""
    models: list[tuple[str, Callable[[], Row]]] = []
    if data.spec_recipe:
        models.append(("flywheel: spec recipe", lambda: flywheel_row(
            data, "flywheel: spec recipe", data.spec.recipe)))
    models.append(("flywheel: spec defaults", lambda: flywheel_row(
        data, "flywheel: spec defaults", LinearSvmRecipe())))
    models.append(("flywheel: minDf 2", lambda: flywheel_row(
        data, "flywheel: minDf 2", LinearSvmRecipe.model_validate(
            {"features": {"ngramRange": [1, 2], "minDf": 2}}))))
    for title, make in baseline_models(data.spec.task.mode is Mode.MULTI_LABEL,
                                         logreg=logreg).items():
        models.append((title, lambda title=title, make=make: baseline_row(data, title, make)))
    rows = []
    for _, run in models:
        row = run()
        print(format_row(row), flush=True)
        rows.append(row)
    return rows


def bundled(name: str) -> Data:
    spec_file = load_spec(PROJECT / "specs" / f"{name}.yaml", PROJECT)
    return Data(name, spec_file.spec, load_corpus(spec_file.spec, PROJECT), spec_recipe=True)


def large(corpus: Path, scratch: Path) -> Data:
    """The full corpus, split and declared as in ``benchmarks/iteration.py``."""
    from iteration import large_case, stage_case_files

    case = large_case(corpus, scratch)
    spec_file, root = stage_case_files(case, scratch)
    spec = load_spec(spec_file, root).spec
    return Data(f"debian-full ({len(spec.task.labels)} labels)", spec, load_corpus(spec, root),
                spec_recipe=False)


HEADER = f"{'dataset':26s} {'model':40s} {'macro-F1':>8s} {'micro-F1':>8s} {'fit s':>7s}"


def format_row(row: Row) -> str:
    return (f"{row.dataset:26s} {row.model:40s} {row.macro_f1:8.4f} {row.micro_f1:8.4f} "
            f"{row.fit_seconds:7.2f} {row.note}").rstrip()


def summary(rows: list[Row]) -> None:
    """Per dataset: the best flywheel row vs the best plain baseline, as a ratio."""
    print("\nbest flywheel recipe vs best plain scikit-learn baseline (macro-F1):")
    for dataset in dict.fromkeys(r.dataset for r in rows):
        ours = max((r for r in rows if r.dataset == dataset and r.model.startswith("flywheel")),
                   key=lambda r: r.macro_f1)
        base = max((r for r in rows if r.dataset == dataset and r.model.startswith("sklearn")),
                   key=lambda r: r.macro_f1)
        print(f"  {dataset:26s} {ours.model} {ours.macro_f1:.4f} vs {base.model} "
              f"{base.macro_f1:.4f}: {ours.macro_f1 / base.macro_f1:.3f}x "
              f"({ours.macro_f1 - base.macro_f1:+.4f})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, help="a prebuilt --full corpus CSV")
    parser.add_argument("--skip-large", action="store_true", help="bundled datasets only")
    parser.add_argument("--large-logreg", action="store_true",
                        help="also fit LogisticRegression(C=10) on the full corpus (about 3.5 "
                             "minutes on 2 cores; off by default to keep the run short)")
    args = parser.parse_args(argv)
    print(machine_note())
    print(HEADER)
    rows = rows_for(bundled("debian-sections")) + rows_for(bundled("debian-tags"))
    if not args.skip_large:
        with tempfile.TemporaryDirectory(prefix="flywheel-quality-") as folder:
            scratch = Path(folder)
            corpus = args.corpus or build_full_corpus(scratch / "debian-full.csv")
            if corpus is None:
                print("(full corpus skipped: it cannot be built on this machine)")
            else:
                rows += rows_for(large(corpus, scratch), logreg=args.large_logreg)
                if not args.large_logreg:
                    print("(LogReg(C=10) on the full corpus skipped: --large-logreg runs it)")
    summary(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
