"""Model files: skops round trips exactly; pickles, tampered files and foreign types are refused."""

from __future__ import annotations

import io
import json
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import bundled_rows

from reconciler.core.spec import Features, LinearSvmRecipe, Mode
from reconciler.errors import StateError
from reconciler.stages import modelfile, recipes
from reconciler.stages.modelfile import (
    TRUSTED_TYPES,
    _schema_types,
    bytes_sha256,
    load_model,
    load_model_bytes,
    model_bytes,
    save_model,
)

LABELS = ["games", "math", "sound", "video"]
# Non-ASCII terms and multi-byte characters must survive the compact vocabulary encoding.
EXTRA = [("games", "Échecs: un jeu d'échecs ünïcödé 象棋 with emoji 🎲 pieces"),
         ("math", "Résolution d'équations différentielles: Σ, ∫ and λ-calculus")]


def fitted(tmp_path: Path, mode: Mode = Mode.MULTI_CLASS):
    rows = bundled_rows("debian-sections", "train-v1.csv", LABELS, 25) + EXTRA
    texts = [text for _, text in rows]
    labels = [frozenset([label]) for label, _ in rows]
    recipe = LinearSvmRecipe(features=Features(ngramRange=(1, 2), charNgramRange=(2, 4)))
    pipeline = recipes.build_pipeline(recipe, mode)
    recipes.fit(pipeline, texts, labels, mode, LABELS)
    return pipeline, texts


def test_round_trip_keeps_vocabulary_and_predictions(tmp_path: Path) -> None:
    pipeline, texts = fitted(tmp_path)
    path = tmp_path / "model.skops"
    sha = save_model(pipeline, path)
    loaded = load_model(path, sha)
    words, chars = (step for _, step in pipeline.named_steps["features"].transformer_list)
    loaded_words, loaded_chars = (
        step for _, step in loaded.named_steps["features"].transformer_list)
    assert loaded_words.vocabulary_ == words.vocabulary_
    assert loaded_chars.vocabulary_ == chars.vocabulary_
    assert "象棋" in loaded_words.vocabulary_
    assert list(loaded_words.get_feature_names_out()) == list(words.get_feature_names_out())
    probe = [*texts[:40], "a chess engine with a graphical board", "🎲"]
    assert list(loaded.predict(probe)) == list(pipeline.predict(probe))
    np.testing.assert_array_equal(loaded.decision_function(probe),
                                  pipeline.decision_function(probe))


def test_vocabulary_is_stored_as_flat_arrays_not_a_dict(tmp_path: Path) -> None:
    pipeline, _ = fitted(tmp_path)
    path = tmp_path / "model.skops"
    save_model(pipeline, path)
    schema = zipfile.ZipFile(path).read("schema.json").decode("utf-8")
    assert "terms_utf8_" in schema and "terms_end_" in schema
    assert '"vocabulary_"' not in schema and '"stop_words_"' not in schema
    assert _schema_types(path, "model") <= TRUSTED_TYPES


def test_tampered_model_is_refused_with_both_hashes(tmp_path: Path) -> None:
    pipeline, _ = fitted(tmp_path)
    path = tmp_path / "model.skops"
    sha = save_model(pipeline, path)
    path.write_bytes(path.read_bytes() + b"\0")
    with pytest.raises(StateError, match=f"does not match the recorded {sha}"):
        load_model(path, sha)


def test_pickle_is_refused_without_being_loaded(tmp_path: Path) -> None:
    pipeline, _ = fitted(tmp_path)
    path = tmp_path / "model.skops"
    path.write_bytes(pickle.dumps(pipeline))
    with pytest.raises(StateError, match="pickle and other formats are refused"):
        load_model(path)


def test_foreign_type_in_schema_is_refused(tmp_path: Path) -> None:
    pipeline, _ = fitted(tmp_path)
    good = tmp_path / "model.skops"
    save_model(pipeline, good)
    bad = tmp_path / "bad.skops"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(bad, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "schema.json":
                schema = json.loads(data)
                schema["__module__"], schema["__class__"] = "os", "system"
                data = json.dumps(schema).encode("utf-8")
            dst.writestr(item, data)
    with pytest.raises(StateError, match=r"untrusted types: os\.system"):
        load_model(bad)


# -- the same model as bytes in memory (what a worker without the repository sends back) --------


def test_model_bytes_are_the_file_and_load_back_without_a_file(tmp_path: Path) -> None:
    pipeline, texts = fitted(tmp_path, Mode.MULTI_LABEL)
    path = tmp_path / "model.skops"
    sha = save_model(pipeline, path)
    data = model_bytes(pipeline)
    assert data == path.read_bytes() == model_bytes(pipeline)
    assert bytes_sha256(data) == sha
    loaded = load_model_bytes(data, sha)
    np.testing.assert_array_equal(loaded.predict(texts), pipeline.predict(texts))
    np.testing.assert_array_equal(loaded.predict_proba(texts), pipeline.predict_proba(texts))


def test_model_bytes_are_refused_as_a_file_is(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    pipeline, _ = fitted(tmp_path)
    data = model_bytes(pipeline)
    with pytest.raises(StateError, match=f"does not match the recorded {bytes_sha256(data)}"):
        load_model_bytes(data + b"\0", bytes_sha256(data))
    with pytest.raises(StateError, match="pickle and other formats are refused"):
        load_model_bytes(pickle.dumps(pipeline))
    foreign = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(foreign, "w") as dst:
        for item in src.infolist():
            content = src.read(item.filename)
            if item.filename == "schema.json":
                schema = json.loads(content)
                schema["__module__"], schema["__class__"] = "os", "system"
                content = json.dumps(schema).encode("utf-8")
            dst.writestr(item, content)
    with pytest.raises(StateError, match=r"untrusted types: os\.system") as refused:
        load_model_bytes(foreign.getvalue(), display="model v7")
    assert "model v7" in str(refused.value)
    # The archive bounds are checked on bytes too, before skops reads anything.
    monkeypatch.setattr(modelfile, "MAX_MEMBERS", 2)
    with pytest.raises(StateError, match=r"members; at most 2 are loaded"):
        load_model_bytes(data)
