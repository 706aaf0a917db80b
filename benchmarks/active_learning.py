"""Active learning: does ``flywheel suggest`` pick documents worth labelling?

A simulation on real data, in-process, with the project's own code: the bundled
``debian-sections`` data (MULTI_CLASS, 10 labels; see data/README.md), the recipe of
``specs/debian-sections.yaml`` built by ``reconciler.stages.recipes`` as the train stage builds
it, F1 by ``reconciler.core.metrics.evaluate`` (Comprehend's macro ``AverageF1Score``) on the
bundled TEST file, and the ranking of ``reconciler.core.suggest`` that ``flywheel suggest`` runs
(the same keeper, uncertainty scores and diversity step; the model's calibrated probabilities).

Per seed: a pool of ``--pool-size`` documents drawn from every TRAIN file (their labels hidden),
a labelled start of ``--start`` documents drawn from the pool, then ``--rounds`` rounds: fit,
score on the test file, ask the strategy for ``--batch`` more documents of the rest of the pool,
"label" them (reveal their label). The start and pool are the same for every strategy of one
seed. The baseline is ``random`` (seeded uniform sampling), measured in the same run.

Reported per strategy (curves averaged over the seeds): F1 after each round, and the labels the
averaged curve needs to reach random's final F1 (linear between rounds), as a ratio of random's
final label count (target: the best strategy <= 0.60). A PNG chart of the curves goes to
``--chart``.

Usage: ``.venv/bin/python benchmarks/active_learning.py [--seeds 3] [--rounds 12] [--batch 100]
[--start 100] [--pool-size 2500] [--chart benchmarks/out/active_learning.png]``
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import time
from collections.abc import Sequence
from pathlib import Path

from _common import PROJECT, machine_note

from reconciler.adapters.corpus import load_corpus
from reconciler.adapters.loader import load_spec
from reconciler.core import suggest as ranking
from reconciler.core.documents import Document
from reconciler.core.metrics import evaluate
from reconciler.core.spec import FlywheelSpec
from reconciler.stages import recipes

STRATEGIES = ("random", "margin", "entropy", "diverse")
TARGET = 0.60


def f1_of(pipeline: object, spec: FlywheelSpec, test: Sequence[Document]) -> float:
    task = spec.task
    predicted = recipes.predict(pipeline, [d.text for d in test], task.mode,  # type: ignore
                                task.labels)
    return evaluate(task.mode.value, task.labels, [d.labels for d in test],
                    predicted).average_f1


def fit(spec: FlywheelSpec, labelled: Sequence[Document]) -> object:
    pipeline = recipes.build_pipeline(spec.recipe, spec.task.mode)
    return recipes.fit(pipeline, [d.text for d in labelled], [d.labels for d in labelled],
                       spec.task.mode, spec.task.labels)


def pick(strategy: str, model: object, spec: FlywheelSpec, pool: Sequence[Document],
         count: int, seed: int) -> list[int]:
    """Indices into ``pool`` of the documents ``strategy`` asks to label next, through the same
    keeper, scores and selection as ``flywheel suggest``."""
    keeper = ranking.keeper_for(strategy, count, seed)
    if strategy == "random":
        for index, doc in enumerate(pool):
            keeper.offer(ranking.Candidate(index + 1, doc.text, 0.0))
    else:
        mode = spec.task.mode
        for start in range(0, len(pool), 512):  # the CLI's batch
            chunk = pool[start:start + 512]
            _, scores, _ = recipes.predict_with_scores(model, [d.text for d in chunk],  # type: ignore
                                                       mode, spec.task.labels)
            for offset, (doc, score) in enumerate(zip(chunk, scores, strict=True)):
                keeper.offer(ranking.Candidate(
                    start + offset + 1, doc.text,
                    ranking.uncertainty(score, mode.value, ranking.scored_by(strategy))))
    return [c.line - 1 for c in ranking.chosen(keeper, count, strategy)]


def run_strategy(strategy: str, spec: FlywheelSpec, pool: list[Document], start: list[int],
                 test: Sequence[Document], rounds: int, batch: int, seed: int
                 ) -> list[tuple[int, float]]:
    """(labels, F1) after the start and after each round."""
    labelled = list(start)
    started = set(start)
    rest = [i for i in range(len(pool)) if i not in started]
    curve = []
    for round_ in range(rounds + 1):
        model = fit(spec, [pool[i] for i in labelled])
        curve.append((len(labelled), f1_of(model, spec, test)))
        if round_ == rounds:
            break
        unlabelled = [pool[i] for i in rest]
        chosen = pick(strategy, model, spec, unlabelled, batch, seed * 1000 + round_)
        taken = {rest[i] for i in chosen}
        # the diversity step may give fewer than asked: top up at random, so that every
        # strategy pays the same number of labels each round
        shortfall = batch - len(taken)
        if shortfall > 0:
            others = [i for i in rest if i not in taken]
            taken |= set(random.Random(seed + round_).sample(others, shortfall))
        labelled.extend(sorted(taken))
        rest = [i for i in rest if i not in taken]
    return curve


def labels_to_reach(curve: Sequence[tuple[float, float]], target: float) -> float | None:
    """The first label count at which ``curve`` reaches ``target`` (linear between points)."""
    for (x0, y0), (x1, y1) in itertools.pairwise(curve):
        if y0 >= target:
            return x0
        if y1 >= target:
            return x0 + (x1 - x0) * (target - y0) / (y1 - y0)
    return curve[-1][0] if curve and curve[-1][1] >= target else None


def chart(curves: dict[str, list[tuple[float, float]]],
          spread: dict[str, list[tuple[float, float]]], target: float,
          reached: dict[str, float | None], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = {"random": "#7f7f7f", "margin": "#1f77b4", "entropy": "#2ca02c",
               "diverse": "#d62728"}
    figure, axes = plt.subplots(figsize=(9, 5.5), dpi=120)
    for strategy, curve in curves.items():
        xs, ys = [x for x, _ in curve], [y for _, y in curve]
        low, high = [lo for lo, _ in spread[strategy]], [hi for _, hi in spread[strategy]]
        axes.fill_between(xs, low, high, color=colours[strategy], alpha=0.12, linewidth=0)
        where = reached.get(strategy)
        label = strategy + ("" if where is None or strategy == "random"
                            else f" (reaches random's final F1 at {where:.0f} labels)")
        axes.plot(xs, ys, marker="o", markersize=4, color=colours[strategy], label=label,
                  linewidth=2 if strategy != "random" else 1.6,
                  linestyle="--" if strategy == "random" else "-")
        if where is not None and strategy != "random":
            axes.plot([where], [target], marker="D", markersize=7, color=colours[strategy],
                      markeredgecolor="black", zorder=5)
    axes.axhline(target, color="black", linewidth=0.8, linestyle=":")
    axes.annotate(f"random's final F1 {target:.3f}", (axes.get_xlim()[0], target),
                  xytext=(6, 5), textcoords="offset points", fontsize=9)
    axes.set_xlabel("labelled documents")
    axes.set_ylabel("macro F1 on the test file (mean of seeds; band: min-max)")
    axes.set_title(title, fontsize=11)
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right", fontsize=9)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--start", type=int, default=100)
    parser.add_argument("--pool-size", type=int, default=2500)
    parser.add_argument("--chart", type=Path,
                        default=PROJECT / "benchmarks/out/active_learning.png",
                        help="the PNG of the learning curves (*.png is git-ignored)")
    args = parser.parse_args()
    print(machine_note(), flush=True)
    spec_file = load_spec(PROJECT / "specs/debian-sections.yaml", PROJECT)
    spec = spec_file.spec
    corpus = load_corpus(spec, PROJECT)
    print(f"debian-sections: {len(corpus.train)} TRAIN documents, {len(corpus.test)} TEST; "
          f"recipe {spec.recipe.algorithm}; pool {args.pool_size}, start {args.start}, "
          f"{args.rounds} rounds of {args.batch}, {args.seeds} seeds", flush=True)
    runs: dict[str, list[list[tuple[int, float]]]] = {s: [] for s in STRATEGIES}
    started = time.perf_counter()
    for seed in range(args.seeds):
        rng = random.Random(seed)
        pool = rng.sample(list(corpus.train), args.pool_size)
        start = rng.sample(range(len(pool)), args.start)
        for strategy in STRATEGIES:
            t = time.perf_counter()
            curve = run_strategy(strategy, spec, pool, start, corpus.test, args.rounds,
                                 args.batch, seed)
            runs[strategy].append(curve)
            print(f"  seed {seed} {strategy:8s} " + " ".join(f"{f:.3f}" for _, f in curve)
                  + f"  ({time.perf_counter() - t:.0f} s)", flush=True)
    mean = {s: [(c[0][i][0], sum(r[i][1] for r in c) / len(c))
                for i in range(len(c[0]))] for s, c in runs.items()}
    spread = {s: [(min(r[i][1] for r in c), max(r[i][1] for r in c))
                  for i in range(len(c[0]))] for s, c in runs.items()}
    target = mean["random"][-1][1]
    final_labels = mean["random"][-1][0]
    reached = {s: labels_to_reach(curve, target) for s, curve in mean.items()}
    print(f"\nmacro F1 by labelled documents (mean of {args.seeds} seeds):")
    print(f"{'labels':>8s} " + " ".join(f"{s:>8s}" for s in STRATEGIES))
    for i, (labels, _) in enumerate(mean["random"]):
        print(f"{labels:8d} " + " ".join(f"{mean[s][i][1]:8.4f}" for s in STRATEGIES))
    print(f"\nbaseline: random reaches F1 {target:.4f} with {final_labels} labels")
    for strategy in STRATEGIES[1:]:
        where = reached[strategy]
        if where is None:
            print(f"  {strategy:8s} never reaches it within {final_labels} labels "
                  f"(final F1 {mean[strategy][-1][1]:.4f})")
            continue
        ratio = where / final_labels
        print(f"  {strategy:8s} reaches it with {where:6.0f} labels: {ratio:.2f}x random's "
              f"({'meets' if ratio <= TARGET else 'misses'} the <= {TARGET:.2f}x target); "
              f"final F1 {mean[strategy][-1][1]:.4f} "
              f"({mean[strategy][-1][1] - target:+.4f} vs random)")
    best = min((s for s in STRATEGIES[1:] if reached[s] is not None),
               key=lambda s: reached[s] or 0.0, default=None)
    if best is not None:
        print(f"best: {best}, {(reached[best] or 0) / final_labels:.2f}x random's labels")
    chart(mean, spread, target, reached, args.chart,
          f"Active learning on debian-sections ({args.seeds} seeds, {args.batch} labels a "
          "round, spec recipe)")
    print(f"chart: {args.chart}\ntotal {time.perf_counter() - started:.0f} s "
          f"({os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()
