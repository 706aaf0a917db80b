"""Scores are calibrated probabilities for every recipe; raw scores stay available; decisions,
the model file's safety and the cost of training are what they were. Real scikit-learn fits on
the bundled data."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import bundled_rows

from reconciler.core.metrics import calibration
from reconciler.core.spec import FlywheelSpec, Mode
from reconciler.errors import StateError
from reconciler.stages import modelfile, recipes
from reconciler.stages.calibration import CalibratedClassifier

SECTIONS = ["games", "graphics", "mail", "math", "science", "sound"]
TAGS = ["audio", "image", "text", "video"]
RECIPES = ["linear-svm", "logistic-regression", "complement-nb"]


def spec_for(mode: Mode, algorithm: str, labels: list[str]) -> FlywheelSpec:
    return FlywheelSpec.model_validate({
        "name": "x", "task": {"mode": mode.value, "labels": labels, "minDocumentsPerLabel": 1},
        "datasets": [{"name": "d", "type": "TRAIN", "path": "data/d.csv"}],
        "recipe": {"algorithm": algorithm, "features": {"ngramRange": [1, 2], "minDf": 2}}})


def corpus(mode: Mode) -> tuple[list[str], list[frozenset[str]], list[str],
                                list[frozenset[str]], list[str]]:
    """Train and test texts with their label sets, from the bundled Debian data."""
    if mode is Mode.MULTI_CLASS:
        train = bundled_rows("debian-sections", "train-v3.csv", SECTIONS, 80)
        test = bundled_rows("debian-sections", "test.csv", SECTIONS, 60)
        labels = SECTIONS

        def split(label: str) -> frozenset[str]:
            return frozenset([label])
    else:
        train = _tag_rows("train-v2.csv")
        test = _tag_rows("test.csv")
        labels = TAGS

        def split(label: str) -> frozenset[str]:
            return frozenset(label.split("|")) & set(TAGS)
    return ([t for _, t in train], [split(label) for label, _ in train],
            [t for _, t in test], [split(label) for label, _ in test], labels)


def _tag_rows(file: str) -> list[tuple[str, str]]:
    import csv

    from conftest import BUNDLED

    with (BUNDLED / "debian-tags" / file).open(encoding="utf-8", newline="") as handle:
        return [(label, text) for label, text in csv.reader(handle)
                if set(label.split("|")) & set(TAGS)]


def trained(mode: Mode, algorithm: str):
    texts, truth, test_texts, test_truth, labels = corpus(mode)
    spec = spec_for(mode, algorithm, labels)
    pipeline = recipes.build_pipeline(spec.recipe, mode)
    recipes.fit(pipeline, texts, truth, mode, labels)
    return pipeline, spec, test_texts, test_truth, labels


@pytest.fixture(scope="module")
def models() -> dict[tuple[Mode, str], tuple]:
    return {(mode, algorithm): trained(mode, algorithm)
            for mode in Mode for algorithm in RECIPES}


@pytest.mark.parametrize("algorithm", RECIPES)
@pytest.mark.parametrize("mode", list(Mode), ids=lambda m: m.value)
def test_scores_are_probabilities_and_raw_scores_are_the_classifiers_own(
        models, mode: Mode, algorithm: str) -> None:
    pipeline, _, texts, _, labels = models[mode, algorithm]
    scores, kind = recipes.scores(pipeline, texts, mode, labels)
    assert kind == "probability"
    together = recipes.predict_with_scores(pipeline, texts, mode, labels)  # one transform
    assert together == (recipes.predict(pipeline, texts, mode, labels), scores, kind)
    values = np.array([list(row.values()) for row in scores])
    assert values.min() >= 0.0 and values.max() <= 1.0
    if mode is Mode.MULTI_CLASS:
        np.testing.assert_allclose(values.sum(axis=1), 1.0, atol=1e-9)
    else:  # independent labels: nothing forces a sum of 1
        assert not np.allclose(values.sum(axis=1), 1.0)
    raw, raw_kind = recipes.raw_scores(pipeline, texts, mode, labels)
    assert raw_kind == {"linear-svm": "margin", "logistic-regression": "logit",
                        "complement-nb": "log-likelihood"}[algorithm]
    inner = pipeline[-1].estimator_
    features = pipeline[:-1].transform(texts)
    if algorithm == "linear-svm" and mode is Mode.MULTI_CLASS:
        np.testing.assert_array_equal([list(row.values()) for row in raw],
                                      inner.decision_function(features))
    if mode is Mode.MULTI_CLASS:  # temperature scaling keeps the raw scores' order
        for row, raw_row in zip(scores, raw, strict=True):
            assert max(row, key=row.get) == max(raw_row, key=raw_row.get)


@pytest.mark.parametrize("algorithm", RECIPES)
@pytest.mark.parametrize("mode", list(Mode), ids=lambda m: m.value)
def test_calibration_never_changes_a_decision(models, mode: Mode, algorithm: str) -> None:
    """The kept model is the recipe's classifier fitted on all the training documents."""
    pipeline, spec, texts, _, labels = models[mode, algorithm]
    train_texts, train_truth, *_ = corpus(mode)
    plain = recipes.build_pipeline(spec.recipe, mode)
    plain.steps[-1] = ("classifier", plain[-1].estimator)
    recipes.fit(plain, train_texts, train_truth, mode, labels)
    ours = recipes.predict(pipeline, texts, mode, labels)
    theirs = recipes.predict(plain, texts, mode, labels)
    assert ours == theirs


@pytest.mark.parametrize(("mode", "algorithm"), [
    (Mode.MULTI_CLASS, "linear-svm"), (Mode.MULTI_CLASS, "logistic-regression"),
    (Mode.MULTI_CLASS, "complement-nb"), (Mode.MULTI_LABEL, "linear-svm"),
    (Mode.MULTI_LABEL, "logistic-regression"),
], ids=lambda v: getattr(v, "value", v))
def test_calibrated_scores_beat_the_squashed_raw_scores_on_unseen_data(
        models, mode: Mode, algorithm: str) -> None:
    """ECE and Brier on the test documents: calibrated probabilities against the raw scores
    put through a plain softmax (MULTI_CLASS) or sigmoid (MULTI_LABEL)."""
    pipeline, spec, texts, truth, labels = models[mode, algorithm]
    evaluation = recipes.evaluate(pipeline, [_doc(t, s) for t, s in zip(texts, truth,
                                                                        strict=True)],
                                  spec, labels)
    raw, _ = recipes.raw_scores(pipeline, texts, mode, labels)
    squashed = [_squash(row, mode) for row in raw]
    baseline = calibration(mode.value, labels, truth, squashed)
    calibrated = evaluation.calibration
    assert calibrated is not None
    assert 0.0 <= calibrated.expected_calibration_error <= 1.0
    assert calibrated.expected_calibration_error < 0.1
    assert calibrated.expected_calibration_error < baseline.expected_calibration_error
    assert calibrated.brier_score < baseline.brier_score
    assert 0.0 <= calibrated.brier_score <= (2.0 if mode is Mode.MULTI_CLASS else 1.0)


def _doc(text: str, labels: frozenset[str]):
    from reconciler.core.documents import Document

    return Document(labels, text, 0)


def _squash(row: dict[str, float], mode: Mode) -> dict[str, float]:
    values = np.array(list(row.values()))
    if mode is Mode.MULTI_CLASS:
        values = np.exp(values - values.max())
        values = values / values.sum()
    else:
        values = 1.0 / (1.0 + np.exp(-values))
    return dict(zip(row, map(float, values), strict=True))


def test_evaluation_of_a_model_without_probabilities_has_no_calibration_figures(models) -> None:
    """A linear-SVM model saved before scores were calibrated: F1 figures, null calibration."""
    pipeline, spec, texts, truth, labels = models[Mode.MULTI_CLASS, "linear-svm"]
    old = recipes.build_pipeline(spec.recipe, Mode.MULTI_CLASS)
    old.steps[-1] = ("classifier", pipeline[-1].estimator_)
    old.steps[0] = ("features", pipeline[0])
    evaluation = recipes.evaluate(old, [_doc(t, s) for t, s in zip(texts, truth, strict=True)],
                                  spec, labels)
    assert evaluation.calibration is None
    assert evaluation.to_record()["brierScore"] is None
    assert recipes.scores(old, texts[:3], Mode.MULTI_CLASS, labels)[1] == "margin"
    predicted, scores, kind = recipes.predict_with_scores(old, texts[:3], Mode.MULTI_CLASS,
                                                          labels)
    assert kind == "margin"
    assert scores == recipes.scores(old, texts[:3], Mode.MULTI_CLASS, labels)[0]
    assert predicted == recipes.predict(old, texts[:3], Mode.MULTI_CLASS, labels)


def test_calibrated_model_file_loads_only_while_its_type_is_on_the_allow_list(
        models, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pipeline, _, texts, _, _ = models[Mode.MULTI_LABEL, "linear-svm"]
    path = tmp_path / "model.skops"
    sha = modelfile.save_model(pipeline, path)
    loaded = modelfile.load_model(path, sha)
    assert isinstance(loaded[-1], CalibratedClassifier)
    np.testing.assert_array_equal(loaded.predict_proba(texts), pipeline.predict_proba(texts))
    np.testing.assert_array_equal(loaded[-1].slopes_, pipeline[-1].slopes_)
    from_bytes = modelfile.load_model_bytes(path.read_bytes(), sha)  # a worker's way: in memory
    np.testing.assert_array_equal(from_bytes.predict_proba(texts), pipeline.predict_proba(texts))

    # The allow-list is what lets it in: without the entry, the same file is refused.
    monkeypatch.setattr(modelfile, "TRUSTED_TYPES", modelfile.TRUSTED_TYPES - {
        "reconciler.stages.calibration.CalibratedClassifier"})
    with pytest.raises(StateError, match=r"untrusted types: reconciler\.stages\.calibration"):
        modelfile.load_model(path, sha)
    with pytest.raises(StateError, match=r"untrusted types: reconciler\.stages\.calibration"):
        modelfile.load_model_bytes(path.read_bytes(), sha)
    monkeypatch.undo()

    # A file whose calibrator was swapped for another class of the same module is refused too.
    bad = tmp_path / "bad.skops"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(bad, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "schema.json":
                data = data.replace(b'"CalibratedClassifier"', b'"StageParams"')
            dst.writestr(item, data)
    with pytest.raises(StateError, match=r"untrusted types: reconciler\.stages\.calibration"):
        modelfile.load_model(bad)
    with pytest.raises(StateError, match="does not match the recorded"):
        modelfile.load_model(bad, sha)


def test_too_little_data_to_hold_out_falls_back_to_uncalibrated_softmax() -> None:
    """A class with one document cannot be split: T stays 1, and the model still trains."""
    rows = bundled_rows("debian-sections", "train-v1.csv", ["games", "math"], 6)
    rows += bundled_rows("debian-sections", "train-v1.csv", ["sound"], 1)
    spec = spec_for(Mode.MULTI_CLASS, "linear-svm", ["games", "math", "sound"])
    pipeline = recipes.build_pipeline(spec.recipe, Mode.MULTI_CLASS)
    recipes.fit(pipeline, [t for _, t in rows], [frozenset([label]) for label, _ in rows],
                Mode.MULTI_CLASS, spec.task.labels)
    assert pipeline[-1].calibrated_ is False and pipeline[-1].temperature_ == 1.0
    scores, _ = recipes.scores(pipeline, ["a chess game"], Mode.MULTI_CLASS, spec.task.labels)
    assert sum(scores[0].values()) == pytest.approx(1.0)

