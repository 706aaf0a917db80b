"""Pure classification metrics following Amazon Comprehend's custom-classifier definitions.

Comprehend reports a flywheel iteration's quality as ``AverageF1Score``,
``AveragePrecision``, ``AverageRecall`` and ``AverageAccuracy``. The averages are
*macro* averages over every declared label computed one-vs-rest, and
``AverageF1Score`` is the unweighted mean of per-label F1 (not the F1 of the mean
precision and recall). Reproducing these exactly lets the reconciler compare a
locally trained candidate with the figures Comprehend would report.

Next to them, when the model gives probabilities, the evaluation records how trustworthy those
probabilities are: the Brier score and the expected calibration error (:func:`calibration`).
Comprehend reports no such figures; they are what makes a ``Score`` of 0.9 mean "right 9 times
in 10".

The module is deliberately pure (stdlib only, no I/O) so it can be used in
tests, in the planner, and on recorded evaluations without heavy dependencies.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from reconciler.core.spec import Mode

MULTI_CLASS = Mode.MULTI_CLASS.value
MULTI_LABEL = Mode.MULTI_LABEL.value
MODES: tuple[str, str] = (MULTI_CLASS, MULTI_LABEL)

#: Equal-width probability bins of the expected calibration error.
CALIBRATION_BINS = 10

MultiClassMatrix = tuple[tuple[int, ...], ...]
MultiLabelMatrix = tuple[tuple[tuple[int, int], tuple[int, int]], ...]


def _ratio(numerator: int, denominator: int) -> float:
    """Divide, returning 0.0 on a zero denominator (sklearn's ``zero_division=0``)."""
    return numerator / denominator if denominator else 0.0


def _mean(values: Sequence[float]) -> float:
    """Unweighted mean; 0.0 for an empty sequence so callers never divide by zero."""
    return sum(values) / len(values) if values else 0.0


@dataclass(frozen=True, slots=True)
class LabelMetrics:
    """One-vs-rest counts and scores for a single declared label.

    Counts are kept alongside the ratios so reports can show *why* a score moved
    and so averages can be recomputed without the raw predictions.
    """

    label: str
    precision: float
    recall: float
    f1: float
    support: int
    tp: int
    fp: int
    fn: int
    tn: int

    def to_record(self) -> dict[str, Any]:
        """JSON-ready camelCase dict, matching the ``perLabel`` entries of ``Evaluation``."""
        return {
            "label": self.label,
            "precision": self.precision,
            "recall": self.recall,
            "f1Score": self.f1,
            "support": self.support,
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "tn": self.tn,
        }

    @classmethod
    def from_record(cls, data: Mapping[str, Any]) -> LabelMetrics:
        """Inverse of :meth:`to_record`."""
        return cls(
            label=str(data["label"]),
            precision=float(data["precision"]),
            recall=float(data["recall"]),
            f1=float(data["f1Score"]),
            support=int(data["support"]),
            tp=int(data["tp"]),
            fp=int(data["fp"]),
            fn=int(data["fn"]),
            tn=int(data["tn"]),
        )


@dataclass(frozen=True, slots=True)
class Calibration:
    """How well a model's probabilities match how often it is right, on the test documents.

    ``brier_score``: the mean squared difference between probability and outcome. MULTI_CLASS:
    per document, the sum over the declared labels of ``(p - [label is the true one])**2``,
    averaged over documents (0 is perfect, 2 the worst; scikit-learn's multi-class
    ``brier_score_loss``). MULTI_LABEL: the mean over every (document, label) pair of
    ``(p - [label is true])**2`` (0..1), each label's probability being independent.

    ``expected_calibration_error``: the probabilities are put in :data:`CALIBRATION_BINS`
    equal-width bins (``[0, 0.1)``, … ``[0.9, 1]``); in each bin, the gap between the mean
    probability and the fraction that was right, weighted by the bin's share of the
    probabilities; 0..1, 0 is perfect. MULTI_CLASS bins each document's top probability (right:
    its label is the true one); MULTI_LABEL bins every (document, label) probability (right: the
    label is true).
    """

    brier_score: float
    expected_calibration_error: float


@dataclass(frozen=True, slots=True)
class Evaluation:
    """The full result of evaluating predictions against ground truth.

    ``confusion_matrix`` is N x N (rows = true, columns = predicted, declared
    label order) for MULTI_CLASS, and one ``[[TN, FP], [FN, TP]]`` block per
    label for MULTI_LABEL -- the same layouts as sklearn's ``confusion_matrix``
    and ``multilabel_confusion_matrix`` so results are easy to cross-check.
    """

    mode: str
    labels: tuple[str, ...]
    number_of_documents: int
    average_f1: float
    average_precision: float
    average_recall: float
    average_accuracy: float
    micro_precision: float
    micro_recall: float
    micro_f1: float
    hamming_loss: float
    per_label: tuple[LabelMetrics, ...]
    confusion_matrix: MultiClassMatrix | MultiLabelMatrix
    #: None when the model gives no probabilities (a model trained before they were calibrated).
    calibration: Calibration | None = None

    def comprehend_metrics(self) -> dict[str, float]:
        """Comprehend's FlywheelModelEvaluationMetrics shape.

        Keys: AverageF1Score, AveragePrecision, AverageRecall, AverageAccuracy.
        """
        return {
            "AverageF1Score": self.average_f1,
            "AveragePrecision": self.average_precision,
            "AverageRecall": self.average_recall,
            "AverageAccuracy": self.average_accuracy,
        }

    def calibration_metrics(self) -> dict[str, float | None]:
        """``brierScore`` and ``expectedCalibrationError`` (None without probabilities)."""
        figures = self.calibration
        return {
            "brierScore": figures.brier_score if figures else None,
            "expectedCalibrationError": figures.expected_calibration_error if figures else None,
        }

    def to_record(self) -> dict[str, Any]:
        """JSON-ready dict of everything, with camelCase keys; lists instead of tuples."""
        matrix: list[Any]
        if self.mode == MULTI_CLASS:
            matrix = [list(row) for row in cast(MultiClassMatrix, self.confusion_matrix)]
        else:
            matrix = [[list(row) for row in block]
                      for block in cast(MultiLabelMatrix, self.confusion_matrix)]
        return {
            "mode": self.mode,
            "labels": list(self.labels),
            "numberOfDocuments": self.number_of_documents,
            "averageF1Score": self.average_f1,
            "averagePrecision": self.average_precision,
            "averageRecall": self.average_recall,
            "averageAccuracy": self.average_accuracy,
            "microPrecision": self.micro_precision,
            "microRecall": self.micro_recall,
            "microF1Score": self.micro_f1,
            "hammingLoss": self.hamming_loss,
            **self.calibration_metrics(),
            "perLabel": [item.to_record() for item in self.per_label],
            "confusionMatrix": matrix,
        }

    @classmethod
    def from_record(cls, data: Mapping[str, Any]) -> Evaluation:
        """Inverse of :meth:`to_record`; ``from_record(e.to_record()) == e`` exactly."""
        mode = str(data["mode"])
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; expected one of {MODES}")
        raw_matrix = data["confusionMatrix"]
        matrix: MultiClassMatrix | MultiLabelMatrix
        if mode == MULTI_CLASS:
            matrix = tuple(tuple(int(v) for v in row) for row in raw_matrix)
        else:
            matrix = tuple(
                (
                    (int(block[0][0]), int(block[0][1])),
                    (int(block[1][0]), int(block[1][1])),
                )
                for block in raw_matrix
            )
        return cls(
            mode=mode,
            labels=tuple(str(label) for label in data["labels"]),
            number_of_documents=int(data["numberOfDocuments"]),
            average_f1=float(data["averageF1Score"]),
            average_precision=float(data["averagePrecision"]),
            average_recall=float(data["averageRecall"]),
            average_accuracy=float(data["averageAccuracy"]),
            micro_precision=float(data["microPrecision"]),
            micro_recall=float(data["microRecall"]),
            micro_f1=float(data["microF1Score"]),
            hamming_loss=float(data["hammingLoss"]),
            per_label=tuple(LabelMetrics.from_record(item) for item in data["perLabel"]),
            confusion_matrix=matrix,
            # Records written before calibration was measured have neither key.
            calibration=None if data.get("brierScore") is None else Calibration(
                brier_score=float(data["brierScore"]),
                expected_calibration_error=float(data["expectedCalibrationError"]),
            ),
        )


def _validate(
    mode: str,
    labels: Sequence[str],
    truth: Sequence[frozenset[str]],
    predicted: Sequence[frozenset[str]],
) -> tuple[str, ...]:
    """Reject inputs that would make the metrics silently meaningless."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; expected one of {MODES}")
    declared = tuple(labels)
    if not declared:
        raise ValueError("at least one label must be declared")
    if len(set(declared)) != len(declared):
        duplicates = sorted({label for label in declared if declared.count(label) > 1})
        raise ValueError(f"duplicate declared labels: {duplicates}")
    if len(truth) != len(predicted):
        raise ValueError(f"truth and predicted differ in length: {len(truth)} != {len(predicted)}")
    if not truth:
        raise ValueError("cannot evaluate an empty set of documents")
    known = set(declared)
    for name, docs in (("truth", truth), ("predicted", predicted)):
        for index, doc in enumerate(docs):
            for label in doc:
                if label not in known:
                    raise ValueError(f"undeclared label {label!r} in {name} document {index}")
            if mode == MULTI_CLASS and len(doc) != 1:
                raise ValueError(
                    f"MULTI_CLASS requires exactly one label per document; "
                    f"{name} document {index} has {len(doc)}"
                )
    return declared


def evaluate(
    mode: str,
    labels: Sequence[str],
    truth: Sequence[frozenset[str]],
    predicted: Sequence[frozenset[str]],
    probabilities: Sequence[Mapping[str, float]] | None = None,
) -> Evaluation:
    """Score ``predicted`` against ``truth`` using Comprehend's metric definitions.

    ``truth``/``predicted`` hold one frozenset of labels per document. MULTI_CLASS
    requires exactly one label per document on both sides. Raises ``ValueError``
    for an unknown mode, empty input, mismatched lengths, wrong label counts in
    MULTI_CLASS, or labels outside ``labels`` (the message names the label).
    ``probabilities`` (one label -> probability mapping per document), when given, adds
    the :class:`Calibration` figures.
    """
    declared = _validate(mode, labels, truth, predicted)
    figures = None if probabilities is None else calibration(mode, declared, truth,
                                                             probabilities)
    n_docs = len(truth)

    per_label: list[LabelMetrics] = []
    for label in declared:
        tp = fp = fn = 0
        for true_set, pred_set in zip(truth, predicted, strict=True):
            in_true = label in true_set
            in_pred = label in pred_set
            if in_true and in_pred:
                tp += 1
            elif in_pred:
                fp += 1
            elif in_true:
                fn += 1
        per_label.append(
            LabelMetrics(
                label=label,
                precision=_ratio(tp, tp + fp),
                recall=_ratio(tp, tp + fn),
                # Equivalent to the harmonic mean of P and R, and 0 when tp == 0.
                f1=_ratio(2 * tp, 2 * tp + fp + fn),
                support=tp + fn,
                tp=tp,
                fp=fp,
                fn=fn,
                tn=n_docs - tp - fp - fn,
            )
        )

    sum_tp = sum(m.tp for m in per_label)
    sum_fp = sum(m.fp for m in per_label)
    sum_fn = sum(m.fn for m in per_label)

    matrix: MultiClassMatrix | MultiLabelMatrix
    if mode == MULTI_CLASS:
        index = {label: i for i, label in enumerate(declared)}
        counts = [[0] * len(declared) for _ in declared]
        wrong = 0
        for true_set, pred_set in zip(truth, predicted, strict=True):
            (true_label,) = true_set
            (pred_label,) = pred_set
            counts[index[true_label]][index[pred_label]] += 1
            wrong += true_label != pred_label
        matrix = tuple(tuple(row) for row in counts)
        decisions = n_docs
    else:
        matrix = tuple(((m.tn, m.fp), (m.fn, m.tp)) for m in per_label)
        wrong = sum_fp + sum_fn
        decisions = n_docs * len(declared)
    # Divide counts directly (rather than ``1 - loss``) so e.g. 1113/1129 is exact.
    accuracy = (decisions - wrong) / decisions
    hamming = wrong / decisions

    return Evaluation(
        mode=mode,
        labels=declared,
        number_of_documents=n_docs,
        average_f1=_mean([m.f1 for m in per_label]),
        average_precision=_mean([m.precision for m in per_label]),
        average_recall=_mean([m.recall for m in per_label]),
        average_accuracy=accuracy,
        micro_precision=_ratio(sum_tp, sum_tp + sum_fp),
        micro_recall=_ratio(sum_tp, sum_tp + sum_fn),
        micro_f1=_ratio(2 * sum_tp, 2 * sum_tp + sum_fp + sum_fn),
        hamming_loss=hamming,
        per_label=tuple(per_label),
        confusion_matrix=matrix,
        calibration=figures,
    )


def calibration(
    mode: str,
    labels: Sequence[str],
    truth: Sequence[frozenset[str]],
    probabilities: Sequence[Mapping[str, float]],
    bins: int = CALIBRATION_BINS,
) -> Calibration:
    """Brier score and expected calibration error of ``probabilities`` (see :class:`Calibration`).

    A label missing from a document's mapping has probability 0. Raises ``ValueError`` for
    mismatched lengths or a probability outside 0..1.
    """
    if len(truth) != len(probabilities):
        raise ValueError(f"truth and probabilities differ in length: {len(truth)} != "
                         f"{len(probabilities)}")
    if not truth:
        raise ValueError("cannot evaluate an empty set of documents")
    squared = 0.0
    pairs: list[tuple[float, bool]] = []  # (probability, right) of each binned probability
    for index, (true_set, row) in enumerate(zip(truth, probabilities, strict=True)):
        values = [float(row.get(label, 0.0)) for label in labels]
        if not all(0.0 <= value <= 1.0 for value in values):  # also refuses NaN
            raise ValueError(f"probability outside 0..1 in document {index}: {values}")
        squared += sum((value - (label in true_set)) ** 2
                       for label, value in zip(labels, values, strict=True))
        if mode == MULTI_CLASS:
            top = max(range(len(labels)), key=values.__getitem__)  # first of equal tops
            pairs.append((values[top], labels[top] in true_set))
        else:
            pairs.extend((value, label in true_set)
                         for label, value in zip(labels, values, strict=True))
    brier = squared / len(truth) if mode == MULTI_CLASS else squared / len(pairs)
    totals = [[0, 0.0, 0] for _ in range(bins)]  # count, sum of probabilities, right
    for value, right in pairs:
        cell = totals[min(int(value * bins), bins - 1)]
        cell[0] += 1
        cell[1] += value
        cell[2] += right
    ece = sum(abs(cell[2] - cell[1]) for cell in totals if cell[0]) / len(pairs)
    return Calibration(brier_score=brier, expected_calibration_error=ece)
