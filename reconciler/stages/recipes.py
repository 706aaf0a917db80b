"""Recipes: a spec's ``recipe`` -> an unfitted scikit-learn pipeline, and prediction helpers.

Every recipe is TF-IDF features (word n-grams, optionally character n-grams) followed by a linear
classifier; MULTI_LABEL wraps the classifier one-vs-rest over the declared labels. The classifier
is wrapped in a :class:`~reconciler.stages.calibration.CalibratedClassifier`, so every recipe's
scores are calibrated probabilities (its raw scores stay available: :func:`raw_scores`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import sklearn
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.naive_bayes import ComplementNB
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.svm import LinearSVC

from reconciler.core.documents import Document
from reconciler.core.metrics import Evaluation
from reconciler.core.metrics import evaluate as score_predictions
from reconciler.core.spec import (
    ComplementNbRecipe,
    Features,
    FlywheelSpec,
    LinearSvmRecipe,
    LogisticRegressionRecipe,
    Mode,
    TaskConfig,
)
from reconciler.stages.calibration import CalibratedClassifier, raw_score_kind
from reconciler.stages.calibration import raw_scores as classifier_raw_scores

RecipeModel = LinearSvmRecipe | LogisticRegressionRecipe | ComplementNbRecipe


class CompactTfidfVectorizer(TfidfVectorizer):
    """A TfidfVectorizer whose saved form keeps its vocabulary as two flat arrays.

    skops writes a dict entry by entry into its JSON schema: a 100k-term vocabulary became a
    100 MB file that took seconds to load. An array of terms is one ``.npy`` member, but numpy
    pads every string to the longest one in UTF-32 (a 210k-term vocabulary: 38 MB). So the terms
    are saved as their UTF-8 bytes joined (``terms_utf8_``) plus the offsets where each one ends
    (``terms_end_``): 2.6 MB for the same vocabulary. The term -> column dict is rebuilt on first
    use. ``stop_words_`` (every pruned term, documented as safe to drop) is not saved, nor is
    ``_stop_words_id``: ``id()`` of the stop-word list, scikit-learn's in-process cache of "already
    checked", a memory address that made two saves of one model differ (and means nothing in
    another process).
    """

    @property
    def vocabulary_(self) -> dict[str, int]:
        vocabulary = self.__dict__.get("_vocabulary")
        if vocabulary is None and "terms_utf8_" in self.__dict__:
            vocabulary = {term: index for index, term in enumerate(self._decoded_terms())}
            self.__dict__["_vocabulary"] = vocabulary
        if vocabulary is None:
            raise AttributeError("vocabulary_")
        return vocabulary

    @vocabulary_.setter
    def vocabulary_(self, vocabulary: dict[str, int]) -> None:
        self.__dict__["_vocabulary"] = vocabulary
        terms = [b""] * len(vocabulary)
        for term, index in vocabulary.items():
            terms[index] = term.encode("utf-8")
        self.__dict__["terms_utf8_"] = np.frombuffer(b"".join(terms), dtype=np.uint8)
        self.__dict__["terms_end_"] = np.cumsum([len(t) for t in terms], dtype=np.int64)

    def _decoded_terms(self) -> list[str]:
        blob = self.__dict__["terms_utf8_"].tobytes()
        ends = self.__dict__["terms_end_"].tolist()
        starts = [0, *ends[:-1]]
        return [blob[a:b].decode("utf-8") for a, b in zip(starts, ends, strict=True)]

    def __getstate__(self) -> dict[str, object]:
        state = dict(super().__getstate__())
        state.pop("_vocabulary", None)
        state.pop("stop_words_", None)
        state.pop("_stop_words_id", None)
        return state


def build_pipeline(recipe: RecipeModel, mode: Mode) -> Pipeline:
    classifier = _classifier(recipe)
    if mode is Mode.MULTI_LABEL:
        classifier = OneVsRestClassifier(classifier)
    calibrated = CalibratedClassifier(classifier, multi_label=mode is Mode.MULTI_LABEL,
                                      random_state=recipe.seed)
    return Pipeline([("features", _features(recipe.features)), ("classifier", calibrated)])


def _features(features: Features) -> FeatureUnion | CompactTfidfVectorizer:
    common = {
        "min_df": features.min_df,
        "max_df": features.max_df,
        "max_features": features.max_features,
        "sublinear_tf": features.sublinear_tf,
        "lowercase": features.lowercase,
        "dtype": np.float32,
    }
    words = CompactTfidfVectorizer(ngram_range=features.ngram_range, **common)
    if features.char_ngram_range is None:
        return words
    chars = CompactTfidfVectorizer(analyzer="char_wb", ngram_range=features.char_ngram_range,
                                   **common)
    return FeatureUnion([("words", words), ("chars", chars)])


def _classifier(recipe: RecipeModel) -> LinearSVC | LogisticRegression | ComplementNB:
    if isinstance(recipe, LinearSvmRecipe):
        return LinearSVC(C=recipe.c, class_weight=recipe.class_weight, max_iter=recipe.max_iter,
                         random_state=recipe.seed)
    if isinstance(recipe, LogisticRegressionRecipe):
        return LogisticRegression(C=recipe.c, class_weight=recipe.class_weight,
                                  max_iter=recipe.max_iter, random_state=recipe.seed)
    return ComplementNB(alpha=recipe.alpha)


def fit(pipeline: Pipeline, texts: Sequence[str], labels: Sequence[frozenset[str]],
        mode: Mode, declared: Sequence[str]) -> Pipeline:
    if mode is Mode.MULTI_LABEL:
        pipeline.fit(list(texts), indicator_matrix(labels, declared))
    else:
        pipeline.fit(list(texts), [next(iter(doc)) for doc in labels])
    return pipeline


def indicator_matrix(labels: Sequence[frozenset[str]], declared: Sequence[str]) -> np.ndarray:
    index = {label: i for i, label in enumerate(declared)}
    matrix = np.zeros((len(labels), len(declared)), dtype=np.int8)
    for row, doc in enumerate(labels):
        for label in doc:
            matrix[row, index[label]] = 1
    return matrix


def predict(pipeline: Pipeline, texts: Sequence[str], mode: Mode,
            labels: Sequence[str]) -> list[frozenset[str]]:
    """Predicted label sets. ``labels`` is the label order the model was trained with."""
    return _decode(pipeline.predict(list(texts)), mode, labels)


def _decode(predicted: np.ndarray, mode: Mode, labels: Sequence[str]) -> list[frozenset[str]]:
    if mode is Mode.MULTI_LABEL:
        return [frozenset(labels[int(i)] for i in np.flatnonzero(row)) for row in predicted]
    return [frozenset([str(label)]) for label in predicted]


def evaluate(pipeline: Pipeline, documents: Sequence[Document], spec: FlywheelSpec,
             model_labels: Sequence[str]) -> Evaluation:
    """:func:`score` over ``spec``'s task."""
    return score(pipeline, documents, spec.task, model_labels)


def score(pipeline: Pipeline, documents: Sequence[Document], task: TaskConfig,
          model_labels: Sequence[str]) -> Evaluation:
    """Score a model on test documents over the task's declared labels.

    ``model_labels`` is the label order the model was trained with (it decodes MULTI_LABEL
    indicator columns); the metrics are always computed over the task's labels. A model that
    gives probabilities is also scored for calibration (Brier score, expected calibration error).
    """
    mode = task.mode
    features = pipeline[:-1].transform([d.text for d in documents])  # once, for both
    classifier = pipeline[-1]
    predicted = _decode(classifier.predict(features), mode, model_labels)
    probabilities = None
    if hasattr(classifier, "predict_proba"):
        probabilities = _by_label(classifier.predict_proba(features),
                                  _column_labels(classifier, mode, model_labels))
    return score_predictions(mode.value, task.labels, [d.labels for d in documents],
                             predicted, probabilities)


def scores(pipeline: Pipeline, texts: Sequence[str], mode: Mode,
           labels: Sequence[str]) -> tuple[list[dict[str, float]], str]:
    """Per-label scores for each text, and what they are.

    "probability" (0..1; MULTI_CLASS: they sum to 1), from every model trained since scores were
    calibrated, and from any model with ``predict_proba``; an older linear SVM's scores are its
    raw margins ("margin").
    """
    texts = list(texts)
    classifier = pipeline[-1]
    if hasattr(classifier, "predict_proba"):
        return _by_label(pipeline.predict_proba(texts),
                         _column_labels(classifier, mode, labels)), "probability"
    return raw_scores(pipeline, texts, mode, labels)


def predict_with_scores(pipeline: Pipeline, texts: Sequence[str], mode: Mode,
                        labels: Sequence[str]
                        ) -> tuple[list[frozenset[str]], list[dict[str, float]], str]:
    """:func:`predict` and :func:`scores` from one pass of the features: the TF-IDF transform
    is most of a prediction's cost, so a server classifying one document pays it once. The
    estimators' parameters were checked when the model was fitted, not again per call (a
    quarter of a short document's prediction time)."""
    with sklearn.config_context(skip_parameter_validation=True):
        features = pipeline[:-1].transform(list(texts))
        classifier = pipeline[-1]
        predicted = _decode(classifier.predict(features), mode, labels)
        order = _column_labels(classifier, mode, labels)
        if hasattr(classifier, "predict_proba"):
            probabilities = classifier.predict_proba(features)
            return predicted, _by_label(probabilities, order), "probability"
        return (predicted, _by_label(classifier_raw_scores(classifier, features), order),
                raw_score_kind(classifier))


def raw_scores(pipeline: Pipeline, texts: Sequence[str], mode: Mode,
               labels: Sequence[str]) -> tuple[list[dict[str, float]], str]:
    """The classifier's raw per-label scores (before calibration), and what they are: "margin"
    (linear SVM), "logit" (logistic regression) or "log-likelihood" (complement naive Bayes)."""
    classifier = pipeline[-1]
    values = classifier_raw_scores(classifier, pipeline[:-1].transform(list(texts)))
    return _by_label(values, _column_labels(classifier, mode, labels)), raw_score_kind(classifier)


def _column_labels(classifier: object, mode: Mode, labels: Sequence[str]) -> list[str]:
    if mode is Mode.MULTI_LABEL:
        return list(labels)
    return [str(c) for c in classifier.classes_]  # type: ignore[attr-defined]


def _by_label(values: np.ndarray, order: Sequence[str]) -> list[dict[str, float]]:
    values = np.atleast_2d(values)
    if values.shape[1] == 1 and len(order) == 2:  # binary decision_function: one column
        values = np.hstack([-values, values])
    return [dict(zip(order, map(float, row), strict=True)) for row in values]
