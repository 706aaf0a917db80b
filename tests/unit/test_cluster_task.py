"""The cluster executor's pieces without a cluster: choosing an executor, the exchange store's
names, and a worker's task run in this process (a real scikit-learn fit on bundled data)."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path

import pytest

from reconciler.adapters.exchange import ExchangeStore
from reconciler.core.documents import Document
from reconciler.core.spec import FlywheelSpec
from reconciler.errors import DataError, FlywheelError
from reconciler.runtime.cluster import ClusterExecutor
from reconciler.runtime.executor import DvcExecutor, executor_from, slots_of
from reconciler.stages import remote, train
from reconciler.stages.modelfile import load_model_bytes
from reconciler.stages.params import parse_jsonl

BUNDLED = Path(__file__).resolve().parents[2] / "data/debian-sections"
LABELS = ["database", "games", "mail", "sound"]


def rows(file: str, per_label: int) -> list[Document]:
    seen: dict[str, int] = {}
    found = []
    with (BUNDLED / file).open(encoding="utf-8") as handle:
        for line, (label, text) in enumerate(csv.reader(handle), start=1):
            if label in LABELS and seen.get(label, 0) < per_label:
                seen[label] = seen.get(label, 0) + 1
                found.append(Document(frozenset({label}), text, line))
    return found


def jsonl(documents: list[Document]) -> bytes:
    return "".join(json.dumps({"labels": sorted(d.labels), "text": d.text, "line": d.line}) + "\n"
                   for d in documents).encode()


SPEC = {"task": {"mode": "MULTI_CLASS", "labels": LABELS},
        "datasets": [{"name": "train", "type": "TRAIN", "path": "data/train.csv"},
                     {"name": "test", "type": "TEST", "path": "data/test.csv"}],
        "recipe": {"algorithm": "linear-svm"}}


def task(train_docs: list[Document], test_docs: list[Document],
         active: remote.ActiveRef | None = None) -> remote.RemoteTask:
    return remote.RemoteTask(flywheel="sections", iteration_id="20260101T000000Z",
                             digest="d" * 64, spec=SPEC,
                             train=remote.Blob.inline(jsonl(train_docs)),
                             test=remote.Blob.inline(jsonl(test_docs)), active=active)


@pytest.mark.parametrize("environment", [{}, {"FLYWHEEL_EXECUTOR": "local"}])
def test_the_default_executor_is_local(monkeypatch: pytest.MonkeyPatch,
                                       environment: dict[str, str]) -> None:
    monkeypatch.delenv("FLYWHEEL_EXECUTOR", raising=False)
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    executor = executor_from()
    assert isinstance(executor, DvcExecutor)
    assert slots_of(executor) == 1


def test_a_dask_url_names_the_scheduler(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLYWHEEL_EXECUTOR", "dask://10.0.0.5:8786")
    monkeypatch.setenv("FLYWHEEL_EXCHANGE", "s3://shared/flywheels/")
    executor = executor_from()
    assert isinstance(executor, ClusterExecutor)
    assert executor.address == "tcp://10.0.0.5:8786"
    assert executor.exchange == "s3://shared/flywheels/"
    assert isinstance(executor_from("tls://h:1"), ClusterExecutor)


@pytest.mark.parametrize(("url", "exchange", "message"), [
    ("dask://host", None, "expected local, in-process or dask://HOST:PORT"),
    ("http://host:80", None, "expected local, in-process or dask://HOST:PORT"),
    ("dask://:80", None, "expected local, in-process or dask://HOST:PORT"),
    ("local", "s3://b/x", "--exchange is for a cluster executor"),
    ("dask://h:1", "s3://UPPER/x", "expected s3://BUCKET[/PREFIX]"),
    ("dask://h:1", "/shared/folder", "expected s3://BUCKET[/PREFIX]"),
])
def test_bad_options_are_one_line(url: str, exchange: str | None, message: str) -> None:
    with pytest.raises(FlywheelError) as info:
        executor_from(url, exchange)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_exchange_keys_are_content_addresses() -> None:
    store = ExchangeStore.from_url("s3://shared/runs/a")
    sha = "ab" + "0" * 62
    assert store.key(sha) == f"runs/a/sha256/ab/{'0' * 62}"
    assert ExchangeStore.from_url("s3://shared").key(sha) == f"sha256/ab/{'0' * 62}"
    with pytest.raises(DataError):
        store.key("../../etc/passwd")


def test_a_task_run_here_trains_what_the_train_stage_trains() -> None:
    train_docs, test_docs = rows("train-v1.csv", 15), rows("test.csv", 8)
    result = remote.run(task(train_docs, test_docs))
    spec = FlywheelSpec.model_validate({"name": "sections", **SPEC})
    bare = train.compute(train_docs, spec.task, spec.recipe)
    assert result.model.data == bare.model_bytes  # byte for byte
    assert result.train_summary == bare.summary
    assert result.evaluation["activeVersion"] is None
    assert 0.3 < result.metrics["trained"]["AverageF1Score"] <= 1.0
    assert result.trained_evaluation == result.evaluation["trained"]
    # and the active model, sent as its bytes, is scored with the same function
    active = remote.ActiveRef("v1", "MULTI_CLASS", tuple(LABELS), result.model)
    again = remote.run(task(train_docs, test_docs, active))
    assert again.evaluation["activeVersion"] == "v1"
    # the same model: the same figures (the active one is scored from its serving form, numpy
    # only, so the calibration figures agree to float precision, the F1s exactly)
    active_eval, trained_eval = again.evaluation["active"], again.evaluation["trained"]
    assert active_eval.keys() == trained_eval.keys()
    for key, value in trained_eval.items():
        assert (active_eval[key] == pytest.approx(value, rel=1e-9)
                if isinstance(value, float) else active_eval[key] == value), key
    load_model_bytes(again.model.data or b"", again.model.sha256)  # a loadable skops file


def test_bytes_that_are_not_what_they_claim_are_refused() -> None:
    docs = rows("train-v1.csv", 3)
    real = remote.Blob.inline(jsonl(docs))
    forged = remote.Blob(real.sha256, real.size, jsonl(docs[:-1]))
    with pytest.raises(DataError, match="arrived with other bytes"):
        remote.run(replace(task(docs, docs), train=forged))
    with pytest.raises(DataError, match="no exchange store"):
        remote.run(replace(task(docs, docs), train=real.by_reference()))


@pytest.mark.parametrize("data", [b"{not json\n", b'{"labels": ["a"]}\n', b"\xff\xfe\n"])
def test_prepared_documents_that_do_not_parse_are_a_data_error(data: bytes) -> None:
    with pytest.raises(DataError, match="cannot read prepared data"):
        parse_jsonl(data, display="TRAIN")
