"""A fitted pipeline's serving form (:mod:`reconciler.stages.serving`), at train time.

Read from the fitted estimators' attributes only: nothing here imports scikit-learn (the train
stage has), and a pipeline of a kind the serving form cannot reproduce exports nothing (its
predictions are then made by scikit-learn).
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import operator
import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from reconciler.stages.serving import ANALYZERS, FORMAT, MANIFEST, PREFIX


def export(pipeline: Any, existing: Mapping[str, str]
           ) -> list[tuple[str, bytes]] | None:
    """The serving form's archive members for a fitted pipeline, or None for a pipeline this
    module cannot reproduce (its predictions are then made by scikit-learn).

    ``existing`` maps the SHA-256 of each ``.npy`` member the archive already holds to its
    name: an array skops has stored (a multi-class ``coef_``, every ``idf_`` and vocabulary) is
    named, not stored twice.
    """
    try:
        arrays: list[np.ndarray] = []
        manifest = {"format": FORMAT,
                    "features": [_export_block(b, arrays) for b in _blocks(pipeline[0])],
                    "classifier": _export_classifier(pipeline[-1], arrays)}
    except _NotExportable:
        return None
    members: list[tuple[str, bytes]] = []
    names: list[str] = []
    for array in arrays:
        buffer = io.BytesIO()
        np.lib.format.write_array(buffer, array, allow_pickle=False)  # what skops writes
        data = buffer.getvalue()
        name = existing.get(hashlib.sha256(data).hexdigest())
        if name is None:
            name = f"{PREFIX}{len(members) + 1}.npy"
            members.append((name, data))
        names.append(name)
    text = json.dumps(manifest, sort_keys=True, indent=1)
    text = re.sub(r'"@(\d+)"', lambda m: json.dumps(names[int(m.group(1))]), text)
    return [(MANIFEST, text.encode("utf-8")), *members]


class _NotExportable(Exception):
    pass


def _blocks(features: Any) -> list[Any]:
    if type(features).__name__ == "FeatureUnion":
        return [step for _, step in features.transformer_list]
    return [features]


def _stored(array: np.ndarray, arrays: list[np.ndarray]) -> str:
    """A placeholder for the array's member name (given once the members are laid out)."""
    arrays.append(np.asarray(array))
    return f"@{len(arrays) - 1}"


def _export_block(vectorizer: Any, arrays: list[np.ndarray]) -> dict[str, Any]:
    settings = vectorizer.get_params()
    if (type(vectorizer).__name__ != "CompactTfidfVectorizer"
            or settings["analyzer"] not in ANALYZERS or settings["input"] != "content"
            or settings["preprocessor"] is not None or settings["tokenizer"] is not None
            or settings["stop_words"] is not None or settings["strip_accents"] is not None
            or not vectorizer.use_idf or settings["norm"] not in ("l2", "l1", None)
            or settings["vocabulary"] is not None or settings["binary"]):
        raise _NotExportable
    terms = vectorizer.__dict__["terms_utf8_"]
    ends = vectorizer.__dict__["terms_end_"]
    blob = terms.tobytes()
    starts = [0, *ends.tolist()[:-1]]
    keys = [blob[a:b] for a, b in zip(starts, ends.tolist(), strict=True)]
    if not all(map(operator.lt, keys, itertools.islice(keys, 1, None))):
        raise _NotExportable  # not sorted: binary search would not find every term
    return {"analyzer": settings["analyzer"], "ngramRange": list(settings["ngram_range"]),
            "lowercase": bool(settings["lowercase"]), "tokenPattern": settings["token_pattern"],
            "sublinearTf": bool(settings["sublinear_tf"]), "norm": settings["norm"],
            "terms": _stored(terms, arrays), "ends": _stored(ends, arrays),
            "idf": _stored(vectorizer.idf_, arrays)}


def _export_classifier(calibrated: Any, arrays: list[np.ndarray]) -> dict[str, Any]:
    if type(calibrated).__name__ != "CalibratedClassifier":
        raise _NotExportable  # a model from before calibration
    from reconciler.stages.calibration import raw_score_kind

    estimator = calibrated.estimator_
    if calibrated.multi_label:
        if type(estimator).__name__ != "OneVsRestClassifier":
            raise _NotExportable
        rows = [_binary_linear(e) for e in estimator.estimators_]
        weights = np.vstack([w for w, _ in rows])
        intercept = np.array([b for _, b in rows], dtype=weights.dtype)
        classes = None
        slopes = np.asarray(calibrated.slopes_, np.float64)
        intercepts = np.asarray(calibrated.intercepts_, np.float64)
        calibration: dict[str, Any] = {"slopes": _stored(slopes, arrays),
                                       "intercepts": _stored(intercepts, arrays)}
    else:
        weights, intercept = _multi_class_linear(estimator)
        classes = [str(c) for c in estimator.classes_]
        calibration = {"temperature": float(calibrated.temperature_)}
    return {"weights": _stored(weights, arrays), "intercept": _stored(intercept, arrays),
            "classes": classes, "multiLabel": bool(calibrated.multi_label),
            "rawScoreKind": raw_score_kind(calibrated), **calibration}


def _binary_linear(estimator: Any) -> tuple[np.ndarray, Any]:
    """A binary estimator's raw score ``x @ w + b``, as the one-vs-rest wrapper reads it."""
    name = type(estimator).__name__
    if name in ("LinearSVC", "LogisticRegression"):
        return np.asarray(estimator.coef_)[0], estimator.intercept_[0]
    if name == "ComplementNB":
        log_prob = np.asarray(estimator.feature_log_prob_)
        return log_prob[1] - log_prob[0], log_prob.dtype.type(0)
    raise _NotExportable  # a constant predictor (a label always or never present)


def _multi_class_linear(estimator: Any) -> tuple[np.ndarray, np.ndarray]:
    """Weights and intercept with one row per class (a binary model's one row as -w, w)."""
    name = type(estimator).__name__
    if name in ("LinearSVC", "LogisticRegression"):
        weights = np.asarray(estimator.coef_)
        intercept = np.asarray(estimator.intercept_, weights.dtype)
        if weights.shape[0] == 1:
            weights, intercept = np.vstack([-weights, weights]), np.hstack([-intercept,
                                                                             intercept])
        return weights, intercept
    if name == "ComplementNB":
        weights = np.asarray(estimator.feature_log_prob_)
        intercept = (np.asarray(estimator.class_log_prior_, weights.dtype)
                     if len(estimator.classes_) == 1 else np.zeros(weights.shape[0],
                                                                   weights.dtype))
        return weights, intercept
    raise _NotExportable
