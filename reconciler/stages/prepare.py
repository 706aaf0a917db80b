"""Stage 1: read and check every dataset, write the train and test documents."""

from __future__ import annotations

from reconciler.adapters.datasets import load_corpus
from reconciler.adapters.files import atomic_write_json
from reconciler.stages.params import read_params, write_jsonl


def run(params_file: str) -> None:
    params = read_params(params_file)
    corpus = load_corpus(params.spec, params.root)
    ws = params.workspace
    write_jsonl(params.path(ws.train_data), corpus.train)
    write_jsonl(params.path(ws.test_data), corpus.test)
    atomic_write_json(params.path(ws.prepare_summary), {
        "numberOfTrainDocuments": len(corpus.train),
        "numberOfTestDocuments": len(corpus.test),
        "testSource": corpus.test_source,
    })
