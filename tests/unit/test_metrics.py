"""Tests for reconciler.core.metrics (Comprehend custom-classifier metric definitions)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import (
    accuracy_score,
    brier_score_loss,
    confusion_matrix,
    f1_score,
    hamming_loss,
    multilabel_confusion_matrix,
    precision_recall_fscore_support,
)
from sklearn.preprocessing import MultiLabelBinarizer

from reconciler.core.metrics import (
    MULTI_CLASS,
    MULTI_LABEL,
    Calibration,
    Evaluation,
    LabelMetrics,
    calibration,
    evaluate,
)

TOL = 1e-12


def docs(*specs: str) -> list[frozenset[str]]:
    """Build documents from compact specs: "a|b" -> {a, b}, "" -> no labels."""
    return [frozenset(filter(None, spec.split("|"))) for spec in specs]


def prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    """Hand formulas with zero_division=0 semantics."""
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


# ---------------------------------------------------------------------------
# 1. Hand-computed small cases
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class HandCase:
    id: str
    mode: str
    labels: tuple[str, ...]
    truth: list[frozenset[str]]
    predicted: list[frozenset[str]]
    # per declared label: (tp, fp, fn, tn)
    counts: tuple[tuple[int, int, int, int], ...]
    # per declared label: (precision, recall, f1) as exact fractions worked out by hand
    scores: tuple[tuple[Fraction, Fraction, Fraction], ...]
    accuracy: Fraction
    matrix: tuple


F = Fraction

HAND_CASES = [
    HandCase(
        id="multiclass-3-labels-uneven",
        mode=MULTI_CLASS,
        labels=("cat", "dog", "bird"),
        truth=docs("cat", "cat", "cat", "dog", "dog", "bird"),
        predicted=docs("cat", "dog", "dog", "dog", "dog", "bird"),
        counts=((1, 0, 2, 3), (2, 2, 0, 2), (1, 0, 0, 5)),
        scores=(
            (F(1), F(1, 3), F(1, 2)),
            (F(1, 2), F(1), F(2, 3)),
            (F(1), F(1), F(1)),
        ),
        accuracy=F(4, 6),
        matrix=((1, 2, 0), (0, 2, 0), (0, 0, 1)),
    ),
    HandCase(
        id="multiclass-label-never-predicted",
        mode=MULTI_CLASS,
        labels=("a", "b", "c"),
        truth=docs("a", "b", "c", "c"),
        predicted=docs("a", "b", "a", "b"),
        counts=((1, 1, 0, 2), (1, 1, 0, 2), (0, 0, 2, 2)),
        scores=(
            (F(1, 2), F(1), F(2, 3)),
            (F(1, 2), F(1), F(2, 3)),
            (F(0), F(0), F(0)),
        ),
        accuracy=F(2, 4),
        matrix=((1, 0, 0), (0, 1, 0), (1, 1, 0)),
    ),
    HandCase(
        id="multiclass-label-never-present",
        mode=MULTI_CLASS,
        labels=("a", "b", "c"),
        truth=docs("a", "a", "b", "b"),
        predicted=docs("a", "c", "b", "b"),
        counts=((1, 0, 1, 2), (2, 0, 0, 2), (0, 1, 0, 3)),
        scores=(
            (F(1), F(1, 2), F(2, 3)),
            (F(1), F(1), F(1)),
            (F(0), F(0), F(0)),
        ),
        accuracy=F(3, 4),
        matrix=((1, 0, 1), (0, 2, 0), (0, 0, 0)),
    ),
    HandCase(
        id="multiclass-perfect",
        mode=MULTI_CLASS,
        labels=("x", "y", "z"),
        truth=docs("x", "y", "z", "z"),
        predicted=docs("x", "y", "z", "z"),
        counts=((1, 0, 0, 3), (1, 0, 0, 3), (2, 0, 0, 2)),
        scores=((F(1), F(1), F(1)),) * 3,
        accuracy=F(1),
        matrix=((1, 0, 0), (0, 1, 0), (0, 0, 2)),
    ),
    HandCase(
        id="multiclass-all-wrong",
        mode=MULTI_CLASS,
        labels=("x", "y"),
        truth=docs("x", "y", "y"),
        predicted=docs("y", "x", "x"),
        counts=((0, 2, 1, 0), (0, 1, 2, 0)),
        scores=((F(0), F(0), F(0)),) * 2,
        accuracy=F(0),
        matrix=((0, 1), (2, 0)),
    ),
    HandCase(
        id="multilabel-3-labels",
        mode=MULTI_LABEL,
        labels=("red", "green", "blue"),
        truth=docs("red", "red|green", "blue", "green"),
        predicted=docs("red|blue", "red", "blue", "green|red"),
        counts=((2, 1, 0, 1), (1, 0, 1, 2), (1, 1, 0, 2)),
        scores=(
            (F(2, 3), F(1), F(4, 5)),
            (F(1), F(1, 2), F(2, 3)),
            (F(1, 2), F(1), F(2, 3)),
        ),
        accuracy=F(9, 12),
        matrix=(((1, 1), (0, 2)), ((2, 0), (1, 1)), ((2, 1), (0, 1))),
    ),
    HandCase(
        id="multilabel-2-labels-empty-prediction-and-absent-label",
        mode=MULTI_LABEL,
        labels=("a", "b"),
        truth=docs("a", "a"),
        predicted=docs("", "a"),
        counts=((1, 0, 1, 0), (0, 0, 0, 2)),
        scores=((F(1), F(1, 2), F(2, 3)), (F(0), F(0), F(0))),
        accuracy=F(3, 4),
        matrix=(((0, 0), (1, 1)), ((2, 0), (0, 0))),
    ),
    HandCase(
        id="multilabel-label-never-predicted",
        mode=MULTI_LABEL,
        labels=("a", "b"),
        truth=docs("a|b", "b", "a"),
        predicted=docs("a", "", "a"),
        counts=((2, 0, 0, 1), (0, 0, 2, 1)),
        scores=((F(1), F(1), F(1)), (F(0), F(0), F(0))),
        accuracy=F(4, 6),
        matrix=(((1, 0), (0, 2)), ((1, 0), (2, 0))),
    ),
    HandCase(
        id="multilabel-perfect",
        mode=MULTI_LABEL,
        labels=("a", "b"),
        truth=docs("a|b", "b", "a"),
        predicted=docs("a|b", "b", "a"),
        counts=((2, 0, 0, 1), (2, 0, 0, 1)),
        scores=((F(1), F(1), F(1)),) * 2,
        accuracy=F(1),
        matrix=(((1, 0), (0, 2)), ((1, 0), (0, 2))),
    ),
    HandCase(
        id="multilabel-all-wrong",
        mode=MULTI_LABEL,
        labels=("a", "b"),
        truth=docs("a", "b"),
        predicted=docs("b", "a"),
        counts=((0, 1, 1, 0), (0, 1, 1, 0)),
        scores=((F(0), F(0), F(0)),) * 2,
        accuracy=F(0),
        matrix=(((0, 1), (1, 0)), ((0, 1), (1, 0))),
    ),
]


@pytest.mark.parametrize("case", HAND_CASES, ids=lambda c: c.id)
def test_hand_computed(case: HandCase) -> None:
    result = evaluate(case.mode, case.labels, case.truth, case.predicted)

    assert result.mode == case.mode
    assert result.labels == case.labels
    assert result.number_of_documents == len(case.truth)
    assert [m.label for m in result.per_label] == list(case.labels)

    for metrics, (tp, fp, fn, tn), (p, r, f1) in zip(
        result.per_label, case.counts, case.scores, strict=True
    ):
        assert (metrics.tp, metrics.fp, metrics.fn, metrics.tn) == (tp, fp, fn, tn)
        assert metrics.support == tp + fn
        assert metrics.precision == pytest.approx(float(p), abs=TOL)
        assert metrics.recall == pytest.approx(float(r), abs=TOL)
        assert metrics.f1 == pytest.approx(float(f1), abs=TOL)

    precisions = [s[0] for s in case.scores]
    recalls = [s[1] for s in case.scores]
    f1s = [s[2] for s in case.scores]
    assert result.average_precision == pytest.approx(float(mean(precisions)), abs=TOL)
    assert result.average_recall == pytest.approx(float(mean(recalls)), abs=TOL)
    assert result.average_f1 == pytest.approx(float(mean(f1s)), abs=TOL)
    assert result.average_accuracy == pytest.approx(float(case.accuracy), abs=TOL)
    assert result.hamming_loss == pytest.approx(float(1 - case.accuracy), abs=TOL)

    tp = sum(c[0] for c in case.counts)
    fp = sum(c[1] for c in case.counts)
    fn = sum(c[2] for c in case.counts)
    micro_p, micro_r, micro_f1 = prf(tp, fp, fn)
    assert result.micro_precision == pytest.approx(micro_p, abs=TOL)
    assert result.micro_recall == pytest.approx(micro_r, abs=TOL)
    assert result.micro_f1 == pytest.approx(micro_f1, abs=TOL)

    assert result.confusion_matrix == case.matrix


def test_average_f1_is_mean_of_per_label_f1_not_f1_of_means() -> None:
    case = HAND_CASES[0]
    result = evaluate(case.mode, case.labels, case.truth, case.predicted)
    assert result.average_f1 == pytest.approx(13 / 18, abs=TOL)
    p, r = result.average_precision, result.average_recall
    f1_of_means = 2 * p * r / (p + r)
    assert f1_of_means == pytest.approx(70 / 87, abs=TOL)
    assert result.average_f1 != pytest.approx(f1_of_means, abs=1e-3)


def test_multiclass_micro_scores_equal_accuracy() -> None:
    case = HAND_CASES[0]
    result = evaluate(case.mode, case.labels, case.truth, case.predicted)
    assert result.micro_precision == pytest.approx(result.average_accuracy, abs=TOL)
    assert result.micro_recall == pytest.approx(result.average_accuracy, abs=TOL)
    assert result.micro_f1 == pytest.approx(result.average_accuracy, abs=TOL)


# ---------------------------------------------------------------------------
# 2. Comprehend's published examples
# ---------------------------------------------------------------------------


def spam_dataset(spam_fp: int, spam_fn: int) -> tuple[list[frozenset[str]], list[frozenset[str]]]:
    """1,129 docs: 212 spam, 917 ham, with the given spam false positives/negatives."""
    n_spam, n_ham = 212, 917
    truth = docs(*(["spam"] * n_spam + ["ham"] * n_ham))
    predicted = docs(
        *(
            ["spam"] * (n_spam - spam_fn)
            + ["ham"] * spam_fn
            + ["spam"] * spam_fp
            + ["ham"] * (n_ham - spam_fp)
        )
    )
    return truth, predicted


@pytest.mark.parametrize(
    ("spam_fp", "spam_fn"),
    [pytest.param(8, 8, id="trained-model"), pytest.param(35, 101, id="active-model")],
)
def test_comprehend_ham_spam_example(spam_fp: int, spam_fn: int) -> None:
    n_spam, n_ham = 212, 917
    truth, predicted = spam_dataset(spam_fp, spam_fn)
    result = evaluate(MULTI_CLASS, ("ham", "spam"), truth, predicted)

    spam_tp = n_spam - spam_fn
    ham_tp, ham_fp, ham_fn = n_ham - spam_fp, spam_fn, spam_fp
    expected = {
        "ham": (ham_tp, ham_fp, ham_fn, *prf(ham_tp, ham_fp, ham_fn)),
        "spam": (spam_tp, spam_fp, spam_fn, *prf(spam_tp, spam_fp, spam_fn)),
    }
    for metrics in result.per_label:
        tp, fp, fn, p, r, f1 = expected[metrics.label]
        assert (metrics.tp, metrics.fp, metrics.fn) == (tp, fp, fn)
        assert metrics.tn == 1129 - tp - fp - fn
        assert metrics.precision == pytest.approx(p, abs=TOL)
        assert metrics.recall == pytest.approx(r, abs=TOL)
        assert metrics.f1 == pytest.approx(f1, abs=TOL)

    assert sum(m.support for m in result.per_label) == 1129
    assert result.number_of_documents == 1129

    comprehend = result.comprehend_metrics()
    assert set(comprehend) == {
        "AverageF1Score",
        "AveragePrecision",
        "AverageRecall",
        "AverageAccuracy",
    }
    assert comprehend["AverageF1Score"] == pytest.approx(
        (expected["ham"][5] + expected["spam"][5]) / 2, abs=TOL
    )
    assert comprehend["AveragePrecision"] == pytest.approx(
        (expected["ham"][3] + expected["spam"][3]) / 2, abs=TOL
    )
    assert comprehend["AverageRecall"] == pytest.approx(
        (expected["ham"][4] + expected["spam"][4]) / 2, abs=TOL
    )
    assert comprehend["AverageAccuracy"] == pytest.approx((spam_tp + ham_tp) / 1129, abs=TOL)
    assert result.confusion_matrix == (
        (ham_tp, spam_fp),
        (spam_fn, spam_tp),
    )


def test_comprehend_trained_model_accuracy_is_exact() -> None:
    truth, predicted = spam_dataset(8, 8)
    result = evaluate(MULTI_CLASS, ("ham", "spam"), truth, predicted)
    assert result.average_accuracy == 1113 / 1129 == 0.9858281665190434
    assert result.comprehend_metrics()["AverageAccuracy"] == 0.9858281665190434


def test_comprehend_trained_model_beats_active_model() -> None:
    trained = evaluate(MULTI_CLASS, ("ham", "spam"), *spam_dataset(8, 8))
    active = evaluate(MULTI_CLASS, ("ham", "spam"), *spam_dataset(35, 101))
    for key, value in trained.comprehend_metrics().items():
        assert value > active.comprehend_metrics()[key], key


def test_comprehend_multilabel_16_docs_accuracy_27_of_32() -> None:
    # 16 documents, 2 labels -> 32 decisions, 5 of them wrong.
    truth = docs(
        *["A"] * 4,  # 1-4 correct
        *["B"] * 3,  # 5-7 correct
        *["A|B"] * 3,  # 8-10 correct
        "A",  # 11: extra B predicted (FP B)
        "B",  # 12: extra A predicted (FP A)
        "A|B",  # 13: B missed (FN B)
        "A",  # 14: A missed and B predicted (FN A, FP B)
        "A|B",  # 15 correct
        "B",  # 16 correct
    )
    predicted = docs(
        *["A"] * 4,
        *["B"] * 3,
        *["A|B"] * 3,
        "A|B",
        "A|B",
        "A",
        "B",
        "A|B",
        "B",
    )
    result = evaluate(MULTI_LABEL, ("A", "B"), truth, predicted)

    a, b = result.per_label
    assert (a.tp, a.fp, a.fn, a.tn, a.support) == (10, 1, 1, 4, 11)
    assert (b.tp, b.fp, b.fn, b.tn, b.support) == (9, 2, 1, 4, 10)
    assert result.average_accuracy == 27 / 32 == 0.84375
    assert result.hamming_loss == 5 / 32
    pa, ra, fa = prf(10, 1, 1)
    pb, rb, fb = prf(9, 2, 1)
    assert result.comprehend_metrics() == pytest.approx(
        {
            "AverageF1Score": (fa + fb) / 2,
            "AveragePrecision": (pa + pb) / 2,
            "AverageRecall": (ra + rb) / 2,
            "AverageAccuracy": 0.84375,
        },
        abs=TOL,
    )
    assert result.confusion_matrix == (((4, 1), (1, 10)), ((4, 2), (1, 9)))


# ---------------------------------------------------------------------------
# 3. Cross-check against scikit-learn on random predictions
# ---------------------------------------------------------------------------

SKLEARN_CASES = [
    pytest.param(seed, n_docs, n_labels, id=f"seed{seed}-docs{n_docs}-labels{n_labels}")
    for seed, n_docs, n_labels in [
        (0, 1, 2),
        (1, 5, 3),
        (2, 20, 2),
        (3, 50, 4),
        (4, 200, 7),
        (5, 1000, 10),
        (6, 7, 12),  # more labels than docs -> some labels absent/never predicted
    ]
]


def _label_names(n_labels: int) -> list[str]:
    return [f"label_{i:02d}" for i in range(n_labels)]


@pytest.mark.parametrize(("seed", "n_docs", "n_labels"), SKLEARN_CASES)
def test_multiclass_matches_sklearn(seed: int, n_docs: int, n_labels: int) -> None:
    rng = np.random.RandomState(seed)
    labels = _label_names(n_labels)
    # Skewed class distribution so some labels are rare or missing entirely.
    weights = rng.dirichlet(np.full(n_labels, 0.7))
    y_true = [labels[i] for i in rng.choice(n_labels, size=n_docs, p=weights)]
    # Predictions agree with truth ~60% of the time, otherwise random.
    y_pred = [t if rng.rand() < 0.6 else labels[rng.randint(n_labels)] for t in y_true]

    result = evaluate(
        MULTI_CLASS, labels, [frozenset([t]) for t in y_true], [frozenset([p]) for p in y_pred]
    )

    p, r, f, s = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, average=None, zero_division=0
    )
    assert [m.precision for m in result.per_label] == pytest.approx(list(p), abs=TOL)
    assert [m.recall for m in result.per_label] == pytest.approx(list(r), abs=TOL)
    assert [m.f1 for m in result.per_label] == pytest.approx(list(f), abs=TOL)
    assert [m.support for m in result.per_label] == list(s)

    assert result.average_f1 == pytest.approx(
        f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0), abs=TOL
    )
    micro = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, average="micro", zero_division=0
    )
    assert result.micro_precision == pytest.approx(micro[0], abs=TOL)
    assert result.micro_recall == pytest.approx(micro[1], abs=TOL)
    assert result.micro_f1 == pytest.approx(micro[2], abs=TOL)
    assert result.average_precision == pytest.approx(float(np.mean(p)), abs=TOL)
    assert result.average_recall == pytest.approx(float(np.mean(r)), abs=TOL)
    assert result.average_accuracy == pytest.approx(accuracy_score(y_true, y_pred), abs=TOL)
    assert result.hamming_loss == pytest.approx(hamming_loss(y_true, y_pred), abs=TOL)

    expected_cm = confusion_matrix(y_true, y_pred, labels=labels)
    assert result.confusion_matrix == tuple(tuple(int(v) for v in row) for row in expected_cm)
    ovr = multilabel_confusion_matrix(y_true, y_pred, labels=labels)
    for metrics, block in zip(result.per_label, ovr, strict=True):
        assert [[metrics.tn, metrics.fp], [metrics.fn, metrics.tp]] == block.tolist()


@pytest.mark.parametrize(("seed", "n_docs", "n_labels"), SKLEARN_CASES)
def test_multilabel_matches_sklearn(seed: int, n_docs: int, n_labels: int) -> None:
    rng = np.random.RandomState(seed + 100)
    labels = _label_names(n_labels)
    density = rng.uniform(0.05, 0.6, size=n_labels)
    true_matrix = rng.rand(n_docs, n_labels) < density
    flip = rng.rand(n_docs, n_labels) < 0.25
    pred_matrix = true_matrix ^ flip
    truth = [frozenset(labels[j] for j in np.flatnonzero(row)) for row in true_matrix]
    predicted = [frozenset(labels[j] for j in np.flatnonzero(row)) for row in pred_matrix]

    result = evaluate(MULTI_LABEL, labels, truth, predicted)

    binarizer = MultiLabelBinarizer(classes=labels)
    y_true = binarizer.fit_transform(truth)
    y_pred = binarizer.transform(predicted)
    assert (y_true == true_matrix).all()

    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, average=None, zero_division=0)
    assert [m.precision for m in result.per_label] == pytest.approx(list(p), abs=TOL)
    assert [m.recall for m in result.per_label] == pytest.approx(list(r), abs=TOL)
    assert [m.f1 for m in result.per_label] == pytest.approx(list(f), abs=TOL)
    assert [m.support for m in result.per_label] == list(s)

    assert result.average_f1 == pytest.approx(
        f1_score(y_true, y_pred, average="macro", zero_division=0), abs=TOL
    )
    micro = precision_recall_fscore_support(y_true, y_pred, average="micro", zero_division=0)
    assert result.micro_precision == pytest.approx(micro[0], abs=TOL)
    assert result.micro_recall == pytest.approx(micro[1], abs=TOL)
    assert result.micro_f1 == pytest.approx(micro[2], abs=TOL)
    assert result.average_precision == pytest.approx(float(np.mean(p)), abs=TOL)
    assert result.average_recall == pytest.approx(float(np.mean(r)), abs=TOL)
    assert result.average_accuracy == pytest.approx(1 - hamming_loss(y_true, y_pred), abs=TOL)
    assert result.hamming_loss == pytest.approx(hamming_loss(y_true, y_pred), abs=TOL)

    expected_blocks = multilabel_confusion_matrix(y_true, y_pred)
    assert [[list(row) for row in block] for block in result.confusion_matrix] == (
        expected_blocks.tolist()
    )


# ---------------------------------------------------------------------------
# 4. Record round trip and error cases
# ---------------------------------------------------------------------------

RECORD_KEYS = {
    "mode",
    "labels",
    "numberOfDocuments",
    "averageF1Score",
    "averagePrecision",
    "averageRecall",
    "averageAccuracy",
    "microPrecision",
    "microRecall",
    "microF1Score",
    "hammingLoss",
    "brierScore",
    "expectedCalibrationError",
    "perLabel",
    "confusionMatrix",
}
PER_LABEL_KEYS = {"label", "precision", "recall", "f1Score", "support", "tp", "fp", "fn", "tn"}


@pytest.mark.parametrize("case", HAND_CASES, ids=lambda c: c.id)
def test_record_round_trip(case: HandCase) -> None:
    result = evaluate(case.mode, case.labels, case.truth, case.predicted)
    record = result.to_record()

    assert set(record) == RECORD_KEYS
    assert all(set(item) == PER_LABEL_KEYS for item in record["perLabel"])
    assert record["averageF1Score"] == result.average_f1
    assert record["perLabel"][0]["f1Score"] == result.per_label[0].f1

    wire = json.loads(json.dumps(record))
    assert wire == record
    restored = Evaluation.from_record(wire)
    assert restored == result
    assert restored.to_record() == record
    assert isinstance(restored.confusion_matrix, tuple)
    assert all(isinstance(row, tuple) for row in restored.confusion_matrix)


def test_dataclasses_are_frozen_with_slots() -> None:
    result = evaluate(MULTI_CLASS, ("a", "b"), docs("a", "b"), docs("a", "a"))
    assert not hasattr(result, "__dict__")
    assert not hasattr(result.per_label[0], "__dict__")
    with pytest.raises(AttributeError):
        result.average_f1 = 1.0  # type: ignore[misc]
    with pytest.raises(AttributeError):
        result.per_label[0].f1 = 1.0  # type: ignore[misc]
    assert isinstance(result.per_label[0], LabelMetrics)


ERROR_CASES = [
    pytest.param("BINARY", ("a",), docs("a"), docs("a"), "unknown mode", id="unknown-mode"),
    pytest.param(MULTI_CLASS, (), docs("a"), docs("a"), "at least one label", id="no-labels"),
    pytest.param(
        MULTI_CLASS, ("a", "b", "a"), docs("a"), docs("a"), "duplicate", id="duplicate-labels"
    ),
    pytest.param(MULTI_CLASS, ("a",), [], [], "empty", id="empty-multiclass"),
    pytest.param(MULTI_LABEL, ("a",), [], [], "empty", id="empty-multilabel"),
    pytest.param(
        MULTI_CLASS, ("a", "b"), docs("a", "b"), docs("a"), "differ in length", id="length"
    ),
    pytest.param(
        MULTI_CLASS,
        ("a", "b"),
        docs("a", "zebra"),
        docs("a", "b"),
        "'zebra'",
        id="undeclared-in-truth",
    ),
    pytest.param(
        MULTI_LABEL,
        ("a", "b"),
        docs("a", "b"),
        docs("a|giraffe", "b"),
        "'giraffe'",
        id="undeclared-in-predicted",
    ),
    pytest.param(
        MULTI_CLASS,
        ("a", "b"),
        docs("a|b"),
        docs("a"),
        "exactly one label",
        id="multiclass-two-true-labels",
    ),
    pytest.param(
        MULTI_CLASS,
        ("a", "b"),
        docs("a"),
        docs(""),
        "exactly one label",
        id="multiclass-no-predicted-label",
    ),
]


@pytest.mark.parametrize(("mode", "labels", "truth", "predicted", "message"), ERROR_CASES)
def test_invalid_input_raises(
    mode: str,
    labels: tuple[str, ...],
    truth: list[frozenset[str]],
    predicted: list[frozenset[str]],
    message: str,
) -> None:
    with pytest.raises(ValueError, match=message):
        evaluate(mode, labels, truth, predicted)


def test_from_record_rejects_unknown_mode() -> None:
    record = evaluate(MULTI_CLASS, ("a", "b"), docs("a"), docs("b")).to_record()
    record["mode"] = "BINARY"
    with pytest.raises(ValueError, match="unknown mode"):
        Evaluation.from_record(record)


# ---------------------------------------------------------------------------
# Property: invariants hold for arbitrary multi-label input
# ---------------------------------------------------------------------------

_LABELS = ("a", "b", "c", "d")
_doc = st.frozensets(st.sampled_from(_LABELS))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(_doc, _doc), min_size=1, max_size=30))
def test_multilabel_invariants(pairs: list[tuple[frozenset[str], frozenset[str]]]) -> None:
    truth = [t for t, _ in pairs]
    predicted = [p for _, p in pairs]
    result = evaluate(MULTI_LABEL, _LABELS, truth, predicted)
    assert result.average_accuracy + result.hamming_loss == pytest.approx(1.0, abs=TOL)
    for m in result.per_label:
        assert m.tp + m.fp + m.fn + m.tn == len(pairs)
        assert 0.0 <= m.f1 <= 1.0
    assert Evaluation.from_record(json.loads(json.dumps(result.to_record()))) == result


# ---------------------------------------------------------------------------
# Calibration: Brier score and expected calibration error
# ---------------------------------------------------------------------------


def _reference_ece(confidences: np.ndarray, right: np.ndarray, bins: int = 10) -> float:
    """ECE written out with numpy, independently of the module's loop."""
    index = np.minimum((confidences * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        mask = index == b
        if mask.any():
            total += mask.sum() / len(confidences) * abs(right[mask].mean()
                                                         - confidences[mask].mean())
    return total


@pytest.mark.parametrize("seed", range(5))
def test_multiclass_calibration_matches_sklearn_brier_and_a_reference_ece(seed: int) -> None:
    rng = np.random.default_rng(seed)
    labels = ("a", "b", "c", "d")
    probabilities = rng.dirichlet(np.ones(len(labels)) * 0.5, size=60)
    truth_index = rng.integers(0, len(labels), size=60)
    truth = [frozenset([labels[i]]) for i in truth_index]
    rows = [dict(zip(labels, map(float, row), strict=True)) for row in probabilities]
    figures = calibration(MULTI_CLASS, labels, truth, rows)
    expected = brier_score_loss([labels[i] for i in truth_index], probabilities,
                                labels=list(labels))
    assert figures.brier_score == pytest.approx(expected, abs=1e-12)
    top = probabilities.argmax(axis=1)
    assert figures.expected_calibration_error == pytest.approx(
        _reference_ece(probabilities.max(axis=1), (top == truth_index).astype(float)),
        abs=1e-12)
    assert 0.0 <= figures.expected_calibration_error <= 1.0


@pytest.mark.parametrize("seed", range(5))
def test_multilabel_calibration_is_per_label_brier_and_ece_over_every_pair(seed: int) -> None:
    rng = np.random.default_rng(seed)
    labels = ("a", "b", "c")
    probabilities = rng.random((40, 3))
    indicator = (rng.random((40, 3)) < probabilities).astype(int)
    truth = [frozenset(labels[j] for j in np.flatnonzero(row)) for row in indicator]
    rows = [dict(zip(labels, map(float, row), strict=True)) for row in probabilities]
    figures = calibration(MULTI_LABEL, labels, truth, rows)
    per_label = [brier_score_loss(indicator[:, j], probabilities[:, j]) for j in range(3)]
    assert figures.brier_score == pytest.approx(mean(per_label), abs=1e-12)
    assert figures.expected_calibration_error == pytest.approx(
        _reference_ece(probabilities.ravel(), indicator.ravel().astype(float)), abs=1e-12)


def test_calibration_extremes_perfect_and_worst() -> None:
    truth = docs("a", "b", "a", "b")
    sure_right = [{"a": 1.0, "b": 0.0}, {"a": 0.0, "b": 1.0}] * 2
    sure_wrong = [{"a": 0.0, "b": 1.0}, {"a": 1.0, "b": 0.0}] * 2
    assert calibration(MULTI_CLASS, ("a", "b"), truth, sure_right) == Calibration(0.0, 0.0)
    assert calibration(MULTI_CLASS, ("a", "b"), truth, sure_wrong) == Calibration(2.0, 1.0)
    # Right half the time at 0.5: calibrated (ECE 0) but not sharp (Brier 0.5).
    even = [{"a": 0.5, "b": 0.5}] * 4
    figures = calibration(MULTI_CLASS, ("a", "b"), truth, even)
    assert figures == Calibration(0.5, 0.0)


def test_calibration_refuses_a_probability_outside_zero_to_one() -> None:
    with pytest.raises(ValueError, match=r"outside 0\.\.1 in document 1"):
        calibration(MULTI_LABEL, ("a",), docs("a", ""), [{"a": 0.2}, {"a": -0.404}])
    with pytest.raises(ValueError, match=r"outside 0\.\.1"):
        calibration(MULTI_LABEL, ("a",), docs("a"), [{"a": float("nan")}])


def test_calibration_is_in_the_record_and_round_trips() -> None:
    truth = docs("a", "b", "a")
    probabilities = [{"a": 0.9, "b": 0.1}, {"a": 0.3, "b": 0.7}, {"a": 0.4, "b": 0.6}]
    result = evaluate(MULTI_CLASS, ("a", "b"), truth, docs("a", "b", "b"), probabilities)
    record = result.to_record()
    assert set(record) == RECORD_KEYS
    assert record["brierScore"] == result.calibration.brier_score
    assert record["expectedCalibrationError"] == result.calibration.expected_calibration_error
    assert Evaluation.from_record(json.loads(json.dumps(record))) == result
    # Without probabilities (a model that gives none): null figures, and an older record
    # without the keys at all reads the same.
    plain = evaluate(MULTI_CLASS, ("a", "b"), truth, docs("a", "b", "b"))
    assert plain.to_record()["brierScore"] is None and plain.calibration is None
    old = {k: v for k, v in plain.to_record().items()
           if k not in ("brierScore", "expectedCalibrationError")}
    assert Evaluation.from_record(old) == plain
