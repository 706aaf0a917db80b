"""What calibrated scores cost and give: every recipe on both bundled flywheels.

For each bundled spec (``specs/debian-sections.yaml``, MULTI_CLASS; ``specs/debian-tags.yaml``,
MULTI_LABEL) and each recipe (the spec's own features and, for the spec's algorithm, its
parameters; the other algorithms with their defaults), the train stage's work is timed in this
process, alternating:

- *before*: the recipe's pipeline with the plain classifier (what the train stage fitted before
  scores were calibrated);
- *after*: ``recipes.build_pipeline`` as the train stage runs it, the classifier wrapped in
  ``CalibratedClassifier`` (one extra fit on 80 % of the documents, on the features already
  computed; warm-started for logistic regression).

Only ``fit`` is timed (documents already in memory). On the TEST documents it then prints
AverageF1Score (the same before and after: calibration changes no decision), and the Brier
score and expected calibration error of the calibrated probabilities against the raw scores
squashed by a plain softmax (MULTI_CLASS) or sigmoid (MULTI_LABEL).

Usage: ``.venv/bin/python benchmarks/calibration.py [--repeat 3]``
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from pathlib import Path

import numpy as np

from reconciler.adapters.corpus import load_corpus
from reconciler.adapters.loader import load_spec
from reconciler.core.metrics import calibration
from reconciler.core.spec import FlywheelSpec, Mode
from reconciler.stages import recipes

ROOT = Path(__file__).resolve().parents[1]
ALGORITHMS = ("linear-svm", "logistic-regression", "complement-nb")


def with_algorithm(spec: FlywheelSpec, algorithm: str) -> FlywheelSpec:
    if spec.recipe.algorithm == algorithm:
        return spec
    data = spec.model_dump(by_alias=True)
    data["recipe"] = {"algorithm": algorithm, "features": data["recipe"]["features"]}
    return FlywheelSpec.model_validate(data)


def squash(row: dict[str, float], mode: Mode) -> dict[str, float]:
    values = np.array(list(row.values()))
    if mode is Mode.MULTI_CLASS:
        values = np.exp(values - values.max())
        values = values / values.sum()
    else:
        values = 1.0 / (1.0 + np.exp(-values))
    return dict(zip(row, map(float, values), strict=True))


def timed_fit(spec: FlywheelSpec, texts: list[str], labels: list[frozenset[str]],
              calibrated: bool):
    pipeline = recipes.build_pipeline(spec.recipe, spec.task.mode)
    if not calibrated:
        pipeline.steps[-1] = ("classifier", pipeline[-1].estimator)
    started = time.perf_counter()
    recipes.fit(pipeline, texts, labels, spec.task.mode, spec.task.labels)
    return time.perf_counter() - started, pipeline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    print(f"{'flywheel':16} {'recipe':20} {'fit before':>10} {'after':>7} {'cost':>6}  "
          f"{'F1':>6}  {'Brier raw→cal':>15}  {'ECE raw→cal':>13}")
    for name in ("debian-sections", "debian-tags"):
        base = load_spec(ROOT / "specs" / f"{name}.yaml", ROOT).spec
        for algorithm in ALGORITHMS:
            spec = with_algorithm(base, algorithm)
            corpus = load_corpus(spec, ROOT)
            texts = [d.text for d in corpus.train]
            labels = [d.labels for d in corpus.train]
            before, after = [], []
            for _ in range(args.repeat):
                before.append(timed_fit(spec, texts, labels, calibrated=False)[0])
                seconds, pipeline = timed_fit(spec, texts, labels, calibrated=True)
                after.append(seconds)
            mode = spec.task.mode
            evaluation = recipes.evaluate(pipeline, corpus.test, spec, spec.task.labels)
            raw, _ = recipes.raw_scores(pipeline, [d.text for d in corpus.test], mode,
                                        spec.task.labels)
            squashed = calibration(mode.value, spec.task.labels, [d.labels for d in corpus.test],
                                   [squash(row, mode) for row in raw])
            figures = evaluation.calibration
            b, a = statistics.median(before), statistics.median(after)
            print(f"{name:16} {algorithm:20} {b:9.2f}s {a:6.2f}s {a / b - 1:+6.0%}  "
                  f"{evaluation.average_f1:6.4f}  "
                  f"{squashed.brier_score:6.3f} → {figures.brier_score:5.3f}  "
                  f"{squashed.expected_calibration_error:5.3f} → "
                  f"{figures.expected_calibration_error:5.3f}", flush=True)


if __name__ == "__main__":
    main()
