"""A model's serving form predicts what its scikit-learn pipeline predicts, for every recipe,
both modes and both feature kinds; it is loaded through the model file's checks, without
scikit-learn or skops; a tampered serving form is one clear error. Real fits on bundled data."""

from __future__ import annotations

import functools
import io
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import bundled_rows
from test_calibration import RECIPES, corpus

from reconciler.core.spec import FlywheelSpec, Mode
from reconciler.errors import StateError
from reconciler.stages import modelfile, recipes, serving

FEATURES = {"words": {"ngramRange": [1, 2], "minDf": 2},
            "words+chars": {"ngramRange": [1, 2], "charNgramRange": [2, 5], "minDf": 2,
                            "sublinearTf": True},
            "chars-only-trigrams": {"ngramRange": [3, 3], "charNgramRange": [3, 4],
                                    "lowercase": False}}
#: Odd texts: empty, only unknown words, accents and other scripts, runs of white space.
ODD = ["", "zzzqqq xxyyzz", "Éditeur de texte très rapide — ünïcode 文本编辑器",
       "  games\t\tand   puzzles \n chess  ", "a", "The The THE the"]


@functools.cache
def fitted(mode: Mode, algorithm: str, features: str) -> tuple:
    """A pipeline fitted once per test session (tests only read it), its test texts, labels."""
    texts, truth, test_texts, _, labels = corpus(mode)
    spec = FlywheelSpec.model_validate({
        "name": "x", "task": {"mode": mode.value, "labels": labels, "minDocumentsPerLabel": 1},
        "datasets": [{"name": "d", "type": "TRAIN", "path": "data/d.csv"}],
        "recipe": {"algorithm": algorithm, "features": FEATURES[features]}})
    pipeline = recipes.build_pipeline(spec.recipe, mode)
    recipes.fit(pipeline, texts, truth, mode, labels)
    return pipeline, test_texts + ODD, labels


def written(pipeline, tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "model.skops"
    return path, modelfile.save_model(pipeline, path)


#: Every recipe in both modes on word features; character n-grams (slower fits) once per
#: mode on two of the recipes.
CASES = [(mode, algorithm, "words") for mode in Mode for algorithm in RECIPES] + [
    (Mode.MULTI_CLASS, "linear-svm", "words+chars"),
    (Mode.MULTI_LABEL, "complement-nb", "words+chars"),
    (Mode.MULTI_CLASS, "logistic-regression", "chars-only-trigrams"),
    (Mode.MULTI_LABEL, "linear-svm", "chars-only-trigrams")]


@pytest.mark.parametrize(("mode", "algorithm", "features"), CASES,
                         ids=[f"{m.value}-{a}-{f}" for m, a, f in CASES])
def test_the_serving_form_predicts_what_the_pipeline_predicts(
        tmp_path: Path, mode: Mode, algorithm: str, features: str) -> None:
    pipeline, texts, labels = fitted(mode, algorithm, features)
    path, sha = written(pipeline, tmp_path)
    model = modelfile.load_serving(path, sha)
    assert model is not None
    expected = recipes.predict_with_scores(pipeline, texts, mode, labels)
    got = model.predict_with_scores(texts, labels)
    assert got[0] == expected[0]  # the same labels, text for text
    assert got[2] == expected[2] == "probability"
    for ours, theirs in zip(got[1], expected[1], strict=True):
        assert list(ours) == list(theirs)  # the same label order
        # float64 models: to the last bits; float32 ones (logistic regression fits in the
        # features' float32): to float32's precision (the dot products sum in another order)
        assert np.allclose(list(ours.values()), list(theirs.values()), rtol=1e-5, atol=1e-7)
    raw, kind = model.raw_scores(texts, labels)
    raw_expected, kind_expected = recipes.raw_scores(pipeline, texts, mode, labels)
    assert kind == kind_expected
    for ours, theirs in zip(raw, raw_expected, strict=True):
        assert list(ours) == list(theirs)
        assert np.allclose(list(ours.values()), list(theirs.values()), rtol=1e-5, atol=1e-5)
    # and the features themselves, value for value (float32, as scikit-learn computes them)
    matrix = pipeline[:-1].transform(texts[:20]).tocsr()
    offsets = np.cumsum([0, *(len(b.vocabulary) for b in model.blocks)])
    for row, text in enumerate(texts[:20]):
        parts = [block.transform(text) for block in model.blocks]
        columns = np.concatenate([c + offsets[i] for i, (c, _) in enumerate(parts)])
        values = np.concatenate([v for _, v in parts])
        theirs = matrix[row]
        assert columns.tolist() == theirs.indices.tolist()
        assert values.dtype == theirs.data.dtype == np.float32
        assert values.tolist() == theirs.data.tolist()


def test_a_binary_multi_class_model_serves_both_classes(tmp_path: Path) -> None:
    rows = bundled_rows("debian-sections", "train-v3.csv", ["games", "mail"], 60)
    pipeline = recipes.build_pipeline(
        FlywheelSpec.model_validate({
            "name": "x", "task": {"mode": "MULTI_CLASS", "labels": ["games", "mail"],
                                  "minDocumentsPerLabel": 1},
            "datasets": [{"name": "d", "type": "TRAIN", "path": "data/d.csv"}],
            "recipe": {"algorithm": "linear-svm"}}).recipe, Mode.MULTI_CLASS)
    recipes.fit(pipeline, [t for _, t in rows], [frozenset([label]) for label, _ in rows],
                Mode.MULTI_CLASS, ["games", "mail"])
    path, sha = written(pipeline, tmp_path)
    model = modelfile.load_serving(path, sha)
    assert model is not None
    texts = ["a puzzle game", "an email client for the console", *ODD]
    assert (model.predict_with_scores(texts, ["games", "mail"])[0]
            == recipes.predict_with_scores(pipeline, texts, Mode.MULTI_CLASS,
                                           ["games", "mail"])[0])
    assert {next(iter(labels)) for labels in
            model.predict_with_scores(texts[:2], ["games", "mail"])[0]} == {"games", "mail"}


def test_vocabulary_lookups_switch_to_a_dict_and_find_the_same_columns() -> None:
    terms = sorted({f"t{i}é" for i in range(5000)} | {"a", "b b", "文"})
    blob = b"".join(t.encode() for t in terms)
    ends = np.cumsum([len(t.encode()) for t in terms])
    vocabulary = serving.Vocabulary(blob, ends)
    wanted = ["a", "文", "t17é", "missing", "", "a"]
    first = vocabulary.ids(wanted)  # binary search
    assert vocabulary._dict is None
    for _ in range(200):
        vocabulary.ids([f"t{i}é" for i in range(5)])
    assert vocabulary._dict is not None  # searching has cost what the dict costs
    assert vocabulary.ids(wanted) == first
    assert first == [terms.index("a"), terms.index("文"), terms.index("t17é"), -1, -1,
                     terms.index("a")]


def test_a_cold_process_classifies_without_importing_scikit_learn(tmp_path: Path) -> None:
    pipeline, texts, labels = fitted(Mode.MULTI_CLASS, "linear-svm", "words")
    path, sha = written(pipeline, tmp_path)
    script = (
        "import sys, json\n"
        "from pathlib import Path\n"
        "from reconciler.stages.modelfile import load_serving\n"
        f"model = load_serving(Path({str(path)!r}), {sha!r})\n"
        f"print(json.dumps(sorted(model.predict_with_scores({texts[:3]!r}, [])[0][0])))\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('sklearn', 'skops', 'scipy'))))\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    expected = recipes.predict_with_scores(pipeline, texts[:1], Mode.MULTI_CLASS, labels)[0]
    assert out[0] == f'["{next(iter(expected[0]))}"]'
    assert out[1] == "[]"


def manifest_of(path: Path) -> dict:
    import json

    with zipfile.ZipFile(path) as archive:
        return json.loads(archive.read(serving.MANIFEST))


def rewritten(path: Path, change) -> bytes:
    """The model file with its members passed through ``change(name, data, manifest)``."""
    manifest = manifest_of(path)
    source = zipfile.ZipFile(path)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as target:
        for info in source.infolist():
            data = change(info.filename, source.read(info), manifest)
            if data is not None:
                target.writestr(info.filename, data)
    return buffer.getvalue()


def _manifest_edit(edit):
    def change(name: str, data: bytes, _: dict) -> bytes:
        if name != serving.MANIFEST:
            return data
        import json

        manifest = json.loads(data)
        edit(manifest)
        return json.dumps(manifest).encode()
    return change


TAMPERED = {
    "unknown format": (_manifest_edit(lambda m: m.update(format=99)), "unknown format 99"),
    "unknown analyzer": (_manifest_edit(lambda m: m["features"][0].update(analyzer="char")),
                         "analyzer 'char'"),
    "member outside serving/": (
        _manifest_edit(lambda m: m["classifier"].update(weights="schema.json")),
        "names a member 'schema.json'"),
    "missing member": (lambda n, d, m: None if n == m["classifier"]["intercept"] else d,
                       r"member \S+\.npy is missing"),
    "weights of the wrong shape": (
        _manifest_edit(lambda m: m["classifier"].update(weights=m["features"][0]["idf"])),
        "1-D float32"),
    "ends past the terms": (
        _manifest_edit(lambda m: m["features"][0].update(ends=m["features"][0]["terms"])),
        "does not hold together"),
    "pickled array": (lambda n, d, m: _pickled() if n == m["features"][0]["idf"] else d,
                      "array of Python objects"),
    "too deep": (lambda n, d, m: b"[" * 50 + b"]" * 50 if n == serving.MANIFEST else d,
                 "nested deeper than 8"),
}


def _pickled() -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    return buffer.getvalue()


@pytest.mark.parametrize("case", list(TAMPERED))
def test_a_tampered_serving_form_is_one_clear_error(tmp_path: Path, case: str) -> None:
    pipeline, _, _ = fitted(Mode.MULTI_CLASS, "complement-nb", "words")  # shared
    path, _ = written(pipeline, tmp_path)
    change, message = TAMPERED[case]
    bad = tmp_path / "bad.skops"
    bad.write_bytes(rewritten(path, change))
    with pytest.raises(StateError, match=message) as raised:
        modelfile.load_serving(bad, display="lake/x/models/v1.skops")
    assert str(raised.value).startswith("lake/x/models/v1.skops: ")
    assert "\n" not in str(raised.value)


def test_a_model_file_without_a_serving_form_is_used_through_scikit_learn(
        tmp_path: Path) -> None:
    pipeline, texts, labels = fitted(Mode.MULTI_LABEL, "linear-svm", "words")
    path, _ = written(pipeline, tmp_path)
    old = tmp_path / "old.skops"
    old.write_bytes(rewritten(path, lambda n, d, m: None if n.startswith("serving") else d))
    assert modelfile.load_serving(old) is None
    from reconciler.runtime.classify import ModelCache

    loaded = ModelCache().load(tmp_path, "old.skops", modelfile.sha256_of(old))
    assert loaded.serving is None and loaded.pipeline is not None
    assert (loaded.predict_with_scores(texts, Mode.MULTI_LABEL, labels)
            == recipes.predict_with_scores(pipeline, texts, Mode.MULTI_LABEL, labels))
    served = ModelCache().load(tmp_path, "model.skops", modelfile.sha256_of(path))
    assert served.serving is not None


def test_the_serving_form_names_the_arrays_skops_already_stores(tmp_path: Path) -> None:
    pipeline, _, _ = fitted(Mode.MULTI_CLASS, "linear-svm", "words+chars")
    path, _ = written(pipeline, tmp_path)
    manifest = manifest_of(path)
    with zipfile.ZipFile(path) as archive:
        extra = sum(i.file_size for i in archive.infolist() if i.filename.startswith("serving"))
    shared = [block[key] for block in manifest["features"] for key in ("terms", "ends", "idf")]
    shared.append(manifest["classifier"]["weights"])
    assert not any(name.startswith("serving/") for name in shared)  # skops's own members
    assert extra < 0.01 * path.stat().st_size  # the form adds little to the file


@pytest.mark.parametrize("mode", list(Mode), ids=lambda m: m.value)
def test_the_active_model_scores_the_same_from_its_serving_form(
        tmp_path: Path, mode: Mode) -> None:
    """The evaluate stage scores the active model from its serving form: the same F1s, per
    label too, and the same calibration figures to float precision."""
    from reconciler.core.documents import Document
    from reconciler.stages import predictor

    pipeline, _, labels = fitted(mode, "linear-svm", "words")
    _, _, test_texts, test_truth, _ = corpus(mode)
    documents = [Document(truth, text, line) for line, (text, truth)
                 in enumerate(zip(test_texts, test_truth, strict=True), 1)]
    path, sha = written(pipeline, tmp_path)
    task = FlywheelSpec.model_validate({
        "name": "x", "task": {"mode": mode.value, "labels": labels, "minDocumentsPerLabel": 1},
        "datasets": [{"name": "d", "type": "TRAIN", "path": "data/d.csv"}]}).task
    served = predictor.load(path, sha)
    assert served.serving is not None
    ours = served.score(documents, task, labels)
    theirs = predictor.LoadedModel(pipeline=pipeline).score(documents, task, labels)
    assert ours.comprehend_metrics() == theirs.comprehend_metrics()
    assert ours.per_label == theirs.per_label
    assert ours.calibration is not None and theirs.calibration is not None
    assert ours.calibration.brier_score == pytest.approx(theirs.calibration.brier_score,
                                                         rel=1e-6)
    assert ours.calibration.expected_calibration_error == pytest.approx(
        theirs.calibration.expected_calibration_error, rel=1e-5, abs=1e-7)


def test_a_record_naming_other_labels_than_the_model_has_is_one_line(tmp_path: Path) -> None:
    from reconciler.stages import predictor

    pipeline, texts, labels = fitted(Mode.MULTI_LABEL, "linear-svm", "words")
    path, sha = written(pipeline, tmp_path)
    with pytest.raises(StateError, match="4 label columns, the record names 2 labels"):
        predictor.load(path, sha).predict_with_scores(texts[:2], Mode.MULTI_LABEL, labels[:2])
