"""Same inputs, same bytes: the stages' outputs and ``dvc.lock`` do not change on a re-run.

A model fitted twice, in two processes, is saved byte for byte the same (skops archives name
members after memory addresses and stamp them with the time; ``modelfile.canonical_archive``
fixes both), and a real ``dvc repro -f`` of a real flywheel pipeline, with and without an active
model to score, rewrites every output of prepare, train and evaluate with the same bytes and
leaves ``dvc.lock`` as it was.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import yaml
from conftest import PROJECT, bundled_rows, write_csv

LABELS = ["games", "mail", "science", "sound"]

#: Fits every recipe in both modes on the same small data and saves each model; prints the
#: SHA-256 of each file. Run in two processes: ids, hash seeds and times all differ.
FIT_AND_SAVE = """
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[2])
from conftest import bundled_rows
from reconciler.core.spec import FlywheelSpec
from reconciler.stages import recipes
from reconciler.stages.modelfile import save_model

labels = ["games", "mail", "science", "sound"]
rows = bundled_rows("debian-sections", "train-v1.csv", labels, 20)
texts = [text for _, text in rows]
for mode in ("MULTI_CLASS", "MULTI_LABEL"):
    docs = [frozenset([label]) if mode == "MULTI_CLASS" or i % 3 else frozenset([label, "mail"])
            for i, (label, _) in enumerate(rows)]
    for algorithm in ("linear-svm", "logistic-regression", "complement-nb"):
        spec = FlywheelSpec.model_validate({
            "name": "x", "task": {"mode": mode, "labels": labels, "minDocumentsPerLabel": 1},
            "datasets": [{"name": "d", "type": "TRAIN", "path": "data/d.csv"}],
            "recipe": {"algorithm": algorithm,
                       "features": {"ngramRange": [1, 2], "charNgramRange": [2, 4]}}})
        pipeline = recipes.build_pipeline(spec.recipe, spec.task.mode)
        recipes.fit(pipeline, texts, docs, spec.task.mode, labels)
        path = Path(sys.argv[1]) / f"{mode}-{algorithm}.skops"
        print(path.name, save_model(pipeline, path))
"""


def fit_and_save(folder: Path) -> dict[str, str]:
    folder.mkdir()
    done = subprocess.run([sys.executable, "-c", FIT_AND_SAVE, str(folder), str(PROJECT / "tests")],
                          capture_output=True, text=True, check=True,
                          env={**os.environ, "PYTHONHASHSEED": "random"})
    return dict(line.split() for line in done.stdout.splitlines())


def test_a_model_fitted_in_two_processes_is_saved_byte_for_byte_the_same(tmp_path: Path) -> None:
    first, second = fit_and_save(tmp_path / "a"), fit_and_save(tmp_path / "b")
    assert len(first) == 6
    assert first == second
    for name in first:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
        with zipfile.ZipFile(tmp_path / "a" / name) as archive:
            infos = archive.infolist()
        assert infos[0].filename == "schema.json"
        assert {info.date_time for info in infos} == {(1980, 1, 1, 0, 0, 0)}


def test_parameters_sharing_one_object_save_the_same_bytes_as_equal_copies() -> None:
    """Whether two attributes hold one Python object (the spec's default 1.0 as both ``C`` and
    ``max_df`` in one process) or two equal ones (two parsed 1.0s in a stage process) must not
    show in the file: skops writes the first as one shared node."""
    from reconciler.core.spec import FlywheelSpec, Mode
    from reconciler.stages import modelfile, recipes

    rows = bundled_rows("debian-sections", "train-v1.csv", LABELS, 20)
    spec = FlywheelSpec.model_validate({
        "name": "x", "task": {"mode": "MULTI_CLASS", "labels": LABELS},
        "datasets": [{"name": "d", "type": "TRAIN", "path": "data/d.csv"}]})
    saved = []
    for one, other in ((1.0, 1.0), (float("1.0"), float(" 1.0 "))):
        pipeline = recipes.build_pipeline(spec.recipe, Mode.MULTI_CLASS)
        pipeline.set_params(classifier__estimator__C=one, features__max_df=other)
        recipes.fit(pipeline, [t for _, t in rows], [frozenset([label]) for label, _ in rows],
                    Mode.MULTI_CLASS, LABELS)
        saved.append(modelfile.model_bytes(pipeline))
    assert saved[0] == saved[1]


def _outputs(repo: Path) -> dict[str, bytes]:
    out = repo / "pipelines/packages"
    files = {p.relative_to(repo).as_posix(): p.read_bytes()
             for p in sorted((out / "out").iterdir()) if p.is_file()}
    files["pipelines/packages/dvc.lock"] = (out / "dvc.lock").read_bytes()
    return files


def _repro(repo: Path) -> None:
    """``dvc repro -f`` by hand, as a user would: every stage runs again."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    subprocess.run([sys.executable, "-m", "dvc", "repro", "-f", "pipelines/packages/dvc.yaml"],
                   cwd=repo, env=env, capture_output=True, text=True, check=True)


def test_dvc_repro_of_an_unchanged_pipeline_rewrites_the_same_bytes(repo: Path, cli) -> None:
    write_csv(repo / "data/v1.csv", bundled_rows("debian-sections", "train-v1.csv", LABELS, 15))
    write_csv(repo / "data/v2.csv", bundled_rows("debian-sections", "train-v2.csv", LABELS, 25))
    write_csv(repo / "data/test.csv", bundled_rows("debian-sections", "test.csv", LABELS, 20))
    datasets = [{"name": "v1", "type": "TRAIN", "path": "data/v1.csv"},
                {"name": "test", "type": "TEST", "path": "data/test.csv"}]
    spec = {"name": "packages", "task": {"mode": "MULTI_CLASS", "labels": LABELS},
            "datasets": datasets,
            "recipe": {"algorithm": "linear-svm",
                       "features": {"ngramRange": [1, 2], "charNgramRange": [2, 4]}},
            "promotion": {"minF1": 0.1}}
    (repo / "specs/packages.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    cli("reconcile")
    first = _outputs(repo)
    assert "pipelines/packages/out/model.skops" in first
    _repro(repo)
    assert _outputs(repo) == first

    # Second iteration: the evaluate stage now loads and scores the active model (v1) too.
    datasets.append({"name": "v2", "type": "TRAIN", "path": "data/v2.csv"})
    (repo / "specs/packages.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    cli("reconcile")
    second = _outputs(repo)
    assert b'"activeVersion": "v1"' in second["pipelines/packages/out/evaluation.json"]
    _repro(repo)
    assert _outputs(repo) == second
