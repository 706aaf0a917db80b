"""Calibrated probabilities for every recipe, from one cheap internal split.

A linear SVM gives margins, complement naive Bayes gives log-likelihoods whose softmax is close
to 0 or 1 whatever the evidence, and logistic regression's probabilities are only as calibrated
as its regularisation lets them be. :class:`CalibratedClassifier` wraps the recipe's classifier
and maps its raw scores to probabilities fitted on documents it was not trained on:

- the model that is kept is the recipe's classifier fitted on all the training documents, as
  before: its predictions are exactly the recipe's own (the mapping never changes a decision),
  so F1 does not move; only the scores do;
- once more, a copy is fitted on 80 % of the training documents (stratified by label for
  MULTI_CLASS, seeded by the recipe's ``seed``) and scores the other 20 %; the mapping is fitted
  on those held-out raw scores.

MULTI_CLASS: temperature scaling, ``softmax(raw / T)`` with one ``T`` fitted by log-loss: the
probabilities sum to 1 and their order is the raw scores' order (the predicted label is the most
probable one). MULTI_LABEL: Platt scaling per label, ``sigmoid(a * raw + b)`` fitted by log-loss
with Platt's smoothed targets, each label an independent probability; a label with fewer than
:data:`MIN_HELD_OUT` positive or negative held-out documents uses one mapping fitted on all
labels' held-out scores. Too little data to hold any out (a class with one document) leaves
``T = 1`` / the identity slope, and says so in ``calibrated_``.

Cost: the extra fit on 80 % of the documents is on features already computed (the features are
fitted once, by the pipeline). Logistic regression's final fit is warm-started from the 80 %
fit, so it converges in a few iterations. Measured in the README (Scores).
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
from scipy.optimize import minimize, minimize_scalar
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.multiclass import OneVsRestClassifier

from reconciler.stages.serving import sigmoid, softmax

#: The share of the training documents the calibration mapping is fitted on.
HOLDOUT = 0.2
#: Fewer held-out positives (or negatives) of a MULTI_LABEL label: the shared mapping is used.
MIN_HELD_OUT = 3


class CalibratedClassifier(ClassifierMixin, BaseEstimator):
    """A recipe's classifier whose ``predict_proba`` is calibrated on held-out raw scores.

    ``decision_function`` gives the raw scores (``raw_score_kind``: SVM margins, logistic
    regression logits, naive Bayes joint log-likelihoods), one column per class (MULTI_CLASS, in
    ``classes_`` order) or per label (MULTI_LABEL).
    """

    def __init__(self, estimator: Any = None, multi_label: bool = False,
                 random_state: int = 0) -> None:
        self.estimator = estimator
        self.multi_label = multi_label
        self.random_state = random_state

    def fit(self, X: Any, y: Any) -> CalibratedClassifier:
        y = np.asarray(y)
        # The kept model: the recipe's classifier on every document, exactly as without
        # calibration (so calibration never changes a decision).
        self.estimator_ = clone(self.estimator).fit(X, y)
        self.classes_ = self.estimator_.classes_
        split = _split(y, self.multi_label, self.random_state)
        if split is None:
            self.calibrated_ = False
            self._identity(y)
            return self
        fit_rows, held_rows = split
        probe = _probe(self.estimator, self.estimator_).fit(X[fit_rows], y[fit_rows])
        raw = raw_scores(probe, X[held_rows])
        self.calibrated_ = True
        if self.multi_label:
            self.slopes_, self.intercepts_ = _platt_per_label(raw, y[held_rows])
        else:
            self.temperature_ = _temperature(raw, _class_index(probe.classes_, y[held_rows]))
        return self

    def _identity(self, y: np.ndarray) -> None:
        if self.multi_label:
            width = y.shape[1] if y.ndim == 2 else 1
            self.slopes_, self.intercepts_ = np.ones(width), np.zeros(width)
        else:
            self.temperature_ = 1.0

    def decision_function(self, X: Any) -> np.ndarray:
        return raw_scores(self.estimator_, X)

    def predict(self, X: Any) -> np.ndarray:
        return self.estimator_.predict(X)

    def predict_proba(self, X: Any) -> np.ndarray:
        raw = self.decision_function(X)
        if self.multi_label:
            return sigmoid(raw * self.slopes_ + self.intercepts_)
        return softmax(raw / self.temperature_)

    @property
    def raw_score_kind(self) -> str:
        return raw_score_kind(self.estimator_)


def raw_scores(estimator: Any, X: Any) -> np.ndarray:
    """The classifier's raw scores, 2-D: one column per class, or per label for one-vs-rest."""
    if isinstance(estimator, CalibratedClassifier):
        return estimator.decision_function(X)
    if isinstance(estimator, OneVsRestClassifier):
        return np.column_stack([_binary_raw(e, X) for e in estimator.estimators_])
    if hasattr(estimator, "decision_function"):
        values = np.asarray(estimator.decision_function(X), dtype=np.float64)
        return values if values.ndim == 2 else np.column_stack([-values, values])
    return np.asarray(estimator.predict_joint_log_proba(X), dtype=np.float64)


def raw_score_kind(estimator: Any) -> str:
    """What :func:`raw_scores` are: "margin", "logit" or "log-likelihood"."""
    if isinstance(estimator, CalibratedClassifier):
        estimator = estimator.estimator_
    if isinstance(estimator, OneVsRestClassifier):
        estimator = estimator.estimator
    if isinstance(estimator, LogisticRegression):
        return "logit"
    return "margin" if hasattr(estimator, "decision_function") else "log-likelihood"


def _binary_raw(estimator: Any, X: Any) -> np.ndarray:
    if hasattr(estimator, "decision_function"):
        return np.ravel(estimator.decision_function(X)).astype(np.float64)
    jll = estimator.predict_joint_log_proba(X)
    return (jll[:, 1] - jll[:, 0]).astype(np.float64)


def _split(y: np.ndarray, multi_label: bool,
           seed: int) -> tuple[np.ndarray, np.ndarray] | None:
    rows = np.arange(len(y))
    try:
        fit_rows, held_rows = train_test_split(rows, test_size=HOLDOUT, random_state=seed,
                                               stratify=None if multi_label else y)
    except ValueError:  # a class with a single document, or fewer held-out rows than classes
        return None
    if multi_label and not all(0 < y[fit_rows, j].sum() < len(fit_rows)
                               for j in range(y.shape[1])):
        return None  # a label without a positive (or a negative) to fit on
    return np.sort(fit_rows), np.sort(held_rows)


def _probe(template: Any, final: Any) -> Any:
    """The unfitted model fitted on the 80 %: logistic regression (lbfgs and the other iterative
    solvers) starts from the final model's weights, the 80 % optimum being near the 100 % one."""
    if isinstance(final, LogisticRegression) and final.solver != "liblinear":
        probe = copy.deepcopy(final)
        probe.set_params(warm_start=True)
        return probe
    return clone(template)


def _class_index(classes: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.searchsorted(classes, y)


def _temperature(raw: np.ndarray, truth: np.ndarray) -> float:
    """The ``T`` minimising the log-loss of ``softmax(raw / T)`` (searched as log T)."""
    rows = np.arange(len(truth))

    def loss(log_t: float) -> float:
        scaled = raw / np.exp(log_t)
        shifted = scaled - scaled.max(axis=1, keepdims=True)
        log_norm = np.log(np.exp(shifted).sum(axis=1))
        return float(np.mean(log_norm - shifted[rows, truth]))

    found = minimize_scalar(loss, bounds=(-7.0, 7.0), method="bounded",
                            options={"xatol": 1e-6})
    return float(np.exp(found.x))


def _platt(raw: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """Platt's (1999) sigmoid ``(a, b)``, with his smoothed targets against over-fitting."""
    positives = float(truth.sum())
    negatives = float(len(truth) - positives)
    target = np.where(truth > 0, (positives + 1) / (positives + 2), 1 / (negatives + 2))

    def loss(ab: np.ndarray) -> tuple[float, np.ndarray]:
        z = ab[0] * raw + ab[1]
        # log(1 + e^z) - t z, the log-loss in a form that does not overflow
        value = np.logaddexp(0.0, z) - target * z
        gradient = sigmoid(z) - target
        return float(value.sum()), np.array([(gradient * raw).sum(), gradient.sum()])

    start = np.array([1.0, np.log((negatives + 1) / (positives + 1))])
    found = minimize(loss, start, jac=True, method="L-BFGS-B")
    return float(found.x[0]), float(found.x[1])


def _platt_per_label(raw: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    shared = _platt(raw.ravel(), truth.ravel())
    slopes, intercepts = [], []
    for j in range(raw.shape[1]):
        positives = int(truth[:, j].sum())
        enough = min(positives, len(truth) - positives) >= MIN_HELD_OUT
        a, b = _platt(raw[:, j], truth[:, j]) if enough else shared
        slopes.append(a)
        intercepts.append(b)
    return np.array(slopes), np.array(intercepts)
