"""The stages' pure computations: ``train.compute``, ``evaluate.compute``, ``prepare.summarize``.

Called directly on a few hundred real documents (rows of the bundled debian-sections CSVs, read
with the datasets adapter's reader) with real scikit-learn fits, they give what the stage
wrappers DVC runs write (the same F1, the same records, the same model bytes), give the same
model bytes twice, and touch no file: a distributed executor can run them on a worker without
the repository.
"""

from __future__ import annotations

import json
import pickle
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import bundled_rows, write_csv

from reconciler.adapters.comprehend_csv import read_dataset
from reconciler.adapters.corpus import load_corpus
from reconciler.core.documents import Document
from reconciler.core.layout import Workspace
from reconciler.core.spec import FlywheelSpec
from reconciler.errors import StateError
from reconciler.stages import evaluate, prepare, train
from reconciler.stages.modelfile import load_model_bytes

LABELS = ["games", "mail", "math", "net", "science", "sound"]
NAME = "packages"
WS = Workspace(NAME)
PARAMS = str(WS.params)
DATASETS = [{"name": "train", "type": "TRAIN", "path": "data/train.csv"},
            {"name": "test", "type": "TEST", "path": "data/test.csv"}]


def spec_data(mode: str = "MULTI_CLASS", algorithm: str = "linear-svm",
              **features: Any) -> dict[str, Any]:
    return {"task": {"mode": mode, "labels": LABELS, "minDocumentsPerLabel": 5},
            "datasets": DATASETS,
            "recipe": {"algorithm": algorithm,
                       "features": {"ngramRange": [1, 2], **features}}}


def spec_of(data: dict[str, Any]) -> FlywheelSpec:
    return FlywheelSpec.model_validate({"name": NAME, **data})


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding data/train.csv (~240 rows of train-v1) and data/test.csv (~180 rows)."""
    top = tmp_path_factory.mktemp("stage-data")
    write_csv(top / "data/train.csv", bundled_rows("debian-sections", "train-v1.csv", LABELS, 40))
    write_csv(top / "data/test.csv", bundled_rows("debian-sections", "test.csv", LABELS, 30))
    return top


def documents(data: Path, spec: FlywheelSpec) -> tuple[list[Document], list[Document]]:
    """The train and test documents, read with the datasets adapter's reader."""
    return (read_dataset(data / "data/train.csv", "data/train.csv", spec.task),
            read_dataset(data / "data/test.csv", "data/test.csv", spec.task))


def stage_repo(root: Path, data: Path, spec: dict[str, Any],
               active: dict[str, Any] | None = None) -> Path:
    """A folder the stage wrappers run in: the datasets and a generated-style params.yaml."""
    for name in ("train.csv", "test.csv"):
        target = root / "data" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((data / "data" / name).read_bytes())
    params = root / PARAMS
    params.parent.mkdir(parents=True, exist_ok=True)
    params.write_text(yaml.safe_dump({"flywheel": NAME, "spec": spec, "activeModel": active}))
    return root


def run_stages(root: Path, monkeypatch: pytest.MonkeyPatch, *stages: Any) -> None:
    with monkeypatch.context() as patch:
        patch.chdir(root)  # the stages read params.yaml and write relative to the working folder
        for stage in stages:
            stage.run(PARAMS)


def read_out(root: Path, relative: object) -> Any:
    return json.loads((root / str(relative)).read_text("utf-8"))


def as_json(record: Any) -> Any:
    return json.loads(json.dumps(record))


# compute == the stage wrappers ----------------------------------------------------------------


@pytest.mark.parametrize("mode,algorithm,features", [
    ("MULTI_CLASS", "logistic-regression", {"charNgramRange": [2, 4]}),
    ("MULTI_LABEL", "linear-svm", {}),
])
def test_train_then_evaluate_gives_what_the_stage_wrappers_write(
        data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str, algorithm: str,
        features: dict[str, Any]) -> None:
    config = spec_data(mode, algorithm, **features)
    spec = spec_of(config)
    train_docs, test_docs = documents(data, spec)
    assert 200 <= len(train_docs) <= 300 and 150 <= len(test_docs) <= 200

    trained = train.compute(train_docs, spec.task, spec.recipe)
    evaluated = evaluate.compute(test_docs, trained.model, None, spec.task)

    root = stage_repo(tmp_path / "repo", data, config)
    run_stages(root, monkeypatch, prepare, train, evaluate)
    metrics = read_out(root, WS.metrics)
    f1 = metrics["trained"]["AverageF1Score"]
    assert 0.3 < f1 <= 1.0  # a real fit, not a constant
    assert evaluated.metrics["trained"]["AverageF1Score"] == f1
    assert as_json(evaluated.metrics) == metrics
    assert as_json(evaluated.evaluation) == read_out(root, WS.evaluation)
    assert evaluated.per_label == (root / str(WS.per_label)).read_text("utf-8")
    # The train stage's own evaluation and summary, and the model file byte for byte.
    assert as_json(evaluated.trained.to_record()) == read_out(root, WS.trained_evaluation)
    assert trained.summary == read_out(root, WS.train_summary)
    assert trained.summary["numberOfTrainDocuments"] == len(train_docs)
    assert (root / str(WS.model)).read_bytes() == trained.model_bytes
    # prepare.json from the corpus: the same counts the compute path saw.
    summary = read_out(root, WS.prepare_summary)
    assert (summary["numberOfTrainDocuments"], summary["numberOfTestDocuments"]) == (
        len(train_docs), len(test_docs))
    corpus = load_corpus(spec, data)
    read = {d["path"]: (d["md5"], d["size"]) for d in summary["datasets"]}
    assert as_json(prepare.summarize(corpus, read)) == summary


def test_an_active_model_given_as_bytes_scores_as_the_stage_scores_its_file(
        data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = spec_data(), spec_data(algorithm="complement-nb")
    spec = spec_of(second)
    train_docs, test_docs = documents(data, spec)
    old = train.compute(train_docs[:120], spec.task, spec_of(first).recipe)
    models = tmp_path / "repo/lake/packages/models"
    models.mkdir(parents=True)
    (models / "v1.skops").write_bytes(old.model_bytes)
    active = {"version": "v1", "file": "lake/packages/models/v1.skops", "sha256": old.sha256,
              "mode": "MULTI_CLASS", "labels": LABELS}
    root = stage_repo(tmp_path / "repo", data, second, active)
    run_stages(root, monkeypatch, prepare, train, evaluate)

    trained = train.compute(train_docs, spec.task, spec.recipe)
    active_model = evaluate.ActiveModel.from_bytes("v1", "MULTI_CLASS", LABELS, old.model_bytes,
                                                   old.sha256)
    # What a worker is sent: it pickles, bytes and all.
    active_model = pickle.loads(pickle.dumps(active_model))
    evaluated = evaluate.compute(test_docs, trained.model, active_model, spec.task)
    written = read_out(root, WS.evaluation)
    assert written["activeVersion"] == "v1" and written["activeNote"] is None
    assert evaluated.active is not None
    assert evaluated.metrics["active"]["AverageF1Score"] == \
        read_out(root, WS.metrics)["active"]["AverageF1Score"]
    assert as_json(evaluated.evaluation) == written
    assert evaluated.per_label == (root / str(WS.per_label)).read_text("utf-8")
    # The two models differ, so the two columns do (the comparison is of two real scorings).
    assert evaluated.metrics["active"] != evaluated.metrics["trained"]


def test_an_active_model_of_another_task_is_noted_and_never_loaded(data: Path) -> None:
    spec = spec_of(spec_data())
    _, test_docs = documents(data, spec)
    trained_eval = train.compute(documents(data, spec)[0][:120], spec.task, spec.recipe)
    loads: list[str] = []

    def load() -> Any:
        loads.append("loaded")
        raise AssertionError("a model of another task must not be loaded")

    other = evaluate.ActiveModel("v3", "MULTI_CLASS", ("games", "mail"), load)
    evaluated = evaluate.compute(test_docs, trained_eval.model, other, spec.task)
    assert loads == []
    assert evaluated.active is None
    assert evaluated.evaluation["activeVersion"] == "v3"
    assert "trained for another task" in (evaluated.active_note or "")
    assert list(evaluated.metrics) == ["trained"]


def test_evaluate_given_the_trained_evaluation_skips_scoring_it(data: Path) -> None:
    """What the evaluate stage passes (the train stage scored the model): the same records."""
    spec = spec_of(spec_data(algorithm="complement-nb"))
    train_docs, test_docs = documents(data, spec)
    trained = train.compute(train_docs, spec.task, spec.recipe)
    from_model = evaluate.compute(test_docs, trained.model, None, spec.task)
    from_evaluation = evaluate.compute(test_docs, from_model.trained, None, spec.task)
    assert from_evaluation.trained is from_model.trained
    assert from_evaluation.evaluation == from_model.evaluation
    assert from_evaluation.per_label == from_model.per_label


# reproducible bytes -----------------------------------------------------------------------------


def test_two_compute_calls_give_the_same_model_bytes(data: Path) -> None:
    spec = spec_of(spec_data("MULTI_LABEL", "linear-svm", charNgramRange=[2, 3]))
    train_docs, test_docs = documents(data, spec)
    first = train.compute(train_docs, spec.task, spec.recipe)
    second = train.compute(list(train_docs), spec.task, spec.recipe)
    assert first.model is not second.model
    assert first.model_bytes == second.model_bytes
    assert first.sha256 == second.sha256 == first.summary["sha256"]
    # The bytes are the model: loaded back (with every check), they predict what it predicts.
    loaded = load_model_bytes(first.model_bytes, first.sha256)
    texts = [d.text for d in test_docs]
    assert (loaded.predict(texts) == first.model.predict(texts)).all()
    # And a different input gives different bytes (the equality above is not vacuous).
    fewer = train.compute(train_docs[:-10], spec.task, spec.recipe)
    assert fewer.model_bytes != first.model_bytes
    with pytest.raises(StateError, match="does not match the recorded"):
        load_model_bytes(fewer.model_bytes, first.sha256)


# no file touched --------------------------------------------------------------------------------

#: Audit events (PEP 578) that read, write or list the file system.
FILE_EVENTS = frozenset({"open", "os.mkdir", "os.rename", "os.replace", "os.remove", "os.rmdir",
                         "os.listdir", "os.scandir", "os.truncate", "os.chmod", "os.link",
                         "os.symlink", "shutil.rmtree", "shutil.copyfile", "tempfile.mkstemp",
                         "tempfile.mkdtemp"})
_recording: list[list[tuple[str, tuple[Any, ...]]]] = []


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _recording and event in FILE_EVENTS:
        _recording[-1].append((event, args))


sys.addaudithook(_audit)  # cannot be removed: it records only inside `file_events()`


@contextmanager
def file_events() -> Iterator[list[tuple[str, tuple[Any, ...]]]]:
    """The file system events of this process while inside (every thread's)."""
    _recording.append([])
    try:
        yield _recording[-1]
    finally:
        _recording.pop()


def test_the_recorder_sees_file_access(tmp_path: Path) -> None:
    """The check below is only as good as the recorder: it does see a write and a listing."""
    with file_events() as events:
        (tmp_path / "x").write_text("x")
        list(tmp_path.iterdir())
    seen = {event for event, _ in events}
    assert "open" in seen and seen & {"os.listdir", "os.scandir"}


def compute_everything(train_docs: list[Document], test_docs: list[Document],
                       spec: FlywheelSpec) -> evaluate.Evaluated:
    old = train.compute(train_docs[:120], spec.task, spec.recipe)
    trained = train.compute(train_docs, spec.task, spec.recipe)
    active = evaluate.ActiveModel.from_bytes("v1", spec.task.mode.value, spec.task.labels,
                                             old.model_bytes, old.sha256)
    return evaluate.compute(test_docs, trained.model, active, spec.task)


@pytest.fixture
def empty_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)
    yield tmp_path


def test_compute_functions_touch_no_file(data: Path, empty_cwd: Path) -> None:
    spec = spec_of(spec_data(charNgramRange=[2, 4]))
    train_docs, test_docs = documents(data, spec)
    corpus = load_corpus(spec, data)
    compute_everything(train_docs, test_docs, spec)  # first: lazy imports may read modules
    with file_events() as events:
        evaluated = compute_everything(train_docs, test_docs, spec)
        summary = prepare.summarize(corpus, {"data/train.csv": ("0" * 32, 1)})
    assert events == []
    assert list(empty_cwd.iterdir()) == []
    assert evaluated.active is not None and evaluated.metrics["trained"]["AverageF1Score"] > 0.3
    assert summary["numberOfTrainDocuments"] == len(train_docs)
