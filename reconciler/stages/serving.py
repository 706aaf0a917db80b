"""A model's serving form: what predicting needs, as plain arrays, used without scikit-learn.

Importing scikit-learn and skops takes some three seconds, longer than a one-text
``flywheel classify`` should take in all. So every model file also carries what prediction
needs (written at train time by :mod:`reconciler.stages.serving_export`): for each TF-IDF block
its vocabulary (terms as UTF-8 bytes joined, plus where each ends, in the vectorizer's own
sorted order), its ``idf_`` and the analyzer's settings; the classifier as one weight matrix
and intercept (every recipe is linear in the TF-IDF features: a linear SVM's and logistic
regression's ``coef_``, complement naive Bayes' ``feature_log_prob_``; one-vs-rest as one row
per label); and the calibration (the temperature, or the per-label Platt slopes and
intercepts). :class:`ServingModel` predicts from those with numpy alone and gives what
:func:`reconciler.stages.recipes.predict_with_scores` gives: the same labels (the analyzers
below are scikit-learn's, step for step; the TF-IDF values are the same float32 operations in
the same order) and the same scores to float precision (the dot products sum in another order:
to the last bits for float64 weights, to float32's precision for a logistic regression fitted
in float32).

The serving form is stored as extra members of the skops archive (``serving.json`` and
``serving/N.npy``, which skops never reads; an array skops already stores is named, not stored
again), so a model is still one file with one recorded SHA-256, loaded through the same three
checks as any model file (:mod:`reconciler.stages.modelfile`). A model without it (trained
before it existed, or of a kind the export does not know) is used through scikit-learn.
"""

from __future__ import annotations

import itertools
import math
import re
from array import array
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Bumped when the serving form changes meaning; a file of another format is used through
#: scikit-learn instead.
FORMAT = 1
MANIFEST = "serving.json"
PREFIX = "serving/"
#: The sklearn analyzers :class:`TextFeatures` reproduces.
ANALYZERS = ("word", "char_wb")
_WHITE_SPACES = re.compile(r"\s\s+")  # scikit-learn's, for char_wb
#: Words whose char_wb n-gram columns a block keeps (as arrays: some 250 bytes each, 5 MB in
#: all at most): the first this many distinct words seen, which in real text are most of the
#: common ones.
WORD_CACHE = 20_000


def softmax(values: np.ndarray) -> np.ndarray:
    """Row-wise softmax (the largest value subtracted first: no overflow)."""
    shifted = values - values.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    result: np.ndarray = exp / exp.sum(axis=1, keepdims=True)
    return result


def sigmoid(values: np.ndarray) -> np.ndarray:
    """The logistic function, without overflow for large ``|values|``."""
    return 0.5 * (1.0 + np.tanh(0.5 * values))


class ServingFormError(ValueError):
    """A serving form that does not hold together (shapes, types, settings); one line."""


class Vocabulary:
    """Term -> column over terms held as UTF-8 bytes joined and their end offsets, sorted.

    Building the term dict of a 500,000-term vocabulary takes longer than a cold one-text
    prediction should, so lookups start as binary searches of the sorted bytes; once they have
    cost about what building the dict would (ski rental), the dict is built and used.
    """

    def __init__(self, blob: bytes, ends: np.ndarray) -> None:
        self._blob = blob
        self._ends = ends.tolist()
        self._starts = [0, *self._ends[:-1]]
        self._dict: dict[str, int] | None = None
        self._spent = 0.0
        self._cost = max(1.0, math.log2(max(len(self._ends), 2)))

    def __len__(self) -> int:
        return len(self._ends)

    def __getitem__(self, index: int) -> bytes:  # the sequence bisect searches
        return self._blob[self._starts[index]:self._ends[index]]

    def ids(self, terms: Sequence[str]) -> list[int]:
        """Each term's column, or -1 for a term not in the vocabulary."""
        if self._dict is None and self._spent + len(terms) * self._cost > len(self._ends):
            self._dict = {self[i].decode("utf-8"): i for i in range(len(self._ends))}
        self._spent += len(terms) * self._cost
        if self._dict is not None:
            return list(map(self._dict.get, terms, itertools.repeat(-1)))
        return list(map(self._search, terms))

    def _search(self, term: str) -> int:
        """The term's column by binary search, or -1."""
        key = term.encode("utf-8")  # UTF-8 byte order is code point order: str's sort order
        index = bisect_left(self, key)
        return index if index < len(self._ends) and self[index] == key else -1


@dataclass
class TextFeatures:
    """One TF-IDF block: scikit-learn's analyzer, vocabulary lookup, tf, idf and norm."""

    analyzer: str
    ngram_range: tuple[int, int]
    lowercase: bool
    token_pattern: re.Pattern[str] | None
    sublinear_tf: bool
    norm: str | None
    vocabulary: Vocabulary
    idf: np.ndarray | None

    def __post_init__(self) -> None:
        #: char_wb n-grams depend on the word alone, and words repeat: word -> its n-grams'
        #: columns, for at most WORD_CACHE words.
        self._word_ids: dict[str, array[int]] = {}

    def analyze(self, text: str) -> list[str]:
        """The n-grams scikit-learn's ``build_analyzer()`` gives for this block."""
        if self.lowercase:
            text = text.lower()
        if self.analyzer == "char_wb":
            return [gram for word in _WHITE_SPACES.sub(" ", text).split()
                    for gram in _char_wb_grams(word, self.ngram_range)]
        assert self.token_pattern is not None
        return _word_ngrams(self.token_pattern.findall(text), self.ngram_range)

    def _ids(self, text: str) -> list[int]:
        """The columns of :meth:`analyze`'s n-grams (-1: not in the vocabulary), in order."""
        if self.analyzer != "char_wb":
            return self.vocabulary.ids(self.analyze(text))
        if self.lowercase:
            text = text.lower()
        cache, ids = self._word_ids, list[int]()
        for word in _WHITE_SPACES.sub(" ", text).split():
            found = cache.get(word)
            if found is None:
                found = array("q", self.vocabulary.ids(_char_wb_grams(word, self.ngram_range)))
                if len(cache) < WORD_CACHE:
                    cache[word] = found
            ids.extend(found)
        return ids

    def transform(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """One document's nonzero (columns, float32 values), columns ascending."""
        ids = np.array(self._ids(text), dtype=np.int64)
        columns, counts = np.unique(ids[ids >= 0], return_counts=True)
        values = counts.astype(np.float32)
        if self.sublinear_tf:
            np.log(values, values)
            values += 1.0
        if self.idf is not None:
            values *= self.idf[columns]
        if self.norm == "l2":
            values = _l2_normalized(values)
        elif self.norm == "l1":
            values = _l1_normalized(values)
        return columns, values


def _word_ngrams(tokens: list[str], ngram_range: tuple[int, int]) -> list[str]:
    low, high = ngram_range
    grams = list(tokens) if low == 1 else []
    for n in range(max(low, 2), min(high + 1, len(tokens) + 1)):
        grams.extend(map(" ".join, zip(*(tokens[k:] for k in range(n)), strict=False)))
    return grams


def _char_wb_grams(word: str, ngram_range: tuple[int, int]) -> list[str]:
    """scikit-learn's char_wb n-grams of one word: padded with a space each side, every
    n-gram of each size; a word no longer than n counts once, as it is, and ends the sizes."""
    low, high = ngram_range
    word = f" {word} "
    size = len(word)
    grams: list[str] = []
    for n in range(low, high + 1):
        if n >= size:
            grams.append(word)
            break
        grams.extend([word[i:i + n] for i in range(size - n + 1)])
    return grams


def _l2_normalized(values: np.ndarray) -> np.ndarray:
    """scikit-learn's in-place CSR row normalisation: float32 squares summed in float64, in
    column order, each value divided in float64 and stored as float32."""
    total = 0.0
    for square in (values * values).tolist():
        total += square
    if total == 0.0:
        return values
    return (values.astype(np.float64) / math.sqrt(total)).astype(np.float32)


def _l1_normalized(values: np.ndarray) -> np.ndarray:
    total = 0.0
    for value in np.abs(values).tolist():
        total += value
    if total == 0.0:
        return values
    return (values.astype(np.float64) / total).astype(np.float32)


@dataclass
class ServingModel:
    """A model's serving form, loaded: predicts like the pipeline it was exported from."""

    blocks: list[TextFeatures]
    weights: np.ndarray  # (columns, features), in the classifier's own dtype (float32 or 64)
    intercept: np.ndarray  # (columns,), the same dtype
    classes: list[str] | None  # MULTI_CLASS: the classes; MULTI_LABEL: None (one column a label)
    multi_label: bool
    raw_score_kind: str
    temperature: float
    slopes: np.ndarray | None
    intercepts: np.ndarray | None
    _transposed: np.ndarray | None = field(default=None, repr=False)

    def columns(self, labels: Sequence[str]) -> list[str]:
        """What each score column is: the classes, or (MULTI_LABEL) the model's ``labels``, the
        label order it was trained with (as the version record holds it)."""
        if self.classes is not None:
            return self.classes
        if len(labels) != len(self.intercept):
            raise ServingFormError(f"serving form has {len(self.intercept)} label columns, the "
                                   f"record names {len(labels)} labels")
        return [str(label) for label in labels]

    def raw(self, texts: Sequence[str]) -> np.ndarray:
        """The classifier's raw scores, one row per text, one column per class or label."""
        rows = np.empty((len(texts), len(self.intercept)), dtype=np.float64)
        by_feature = self._by_feature()
        offsets = np.cumsum([0, *(len(b.vocabulary) for b in self.blocks)]).tolist()
        for row, text in enumerate(texts):
            parts = [block.transform(text) for block in self.blocks]
            columns = np.concatenate([c + o for (c, _), o in zip(parts, offsets, strict=False)])
            values = np.concatenate([v for _, v in parts]).astype(by_feature.dtype)
            # in the classifier's dtype, as scikit-learn computes it (a model fitted on float32
            # features may hold float32 weights), then widened
            rows[row] = values @ by_feature[columns] + self.intercept
        return rows

    def _by_feature(self) -> np.ndarray:
        """The weights one row per feature (a document's few hundred features gathered as
        contiguous rows, not scattered across every class's row); made on first use."""
        if self._transposed is None:
            self._transposed = np.ascontiguousarray(self.weights.T)
        return self._transposed

    def probabilities(self, raw: np.ndarray) -> np.ndarray:
        if self.multi_label:
            assert self.slopes is not None and self.intercepts is not None
            return sigmoid(raw * self.slopes + self.intercepts)
        return softmax(raw / self.temperature)

    def predict_with_scores(self, texts: Sequence[str], labels: Sequence[str]
                            ) -> tuple[list[frozenset[str]], list[dict[str, float]], str]:
        """Labels and calibrated probabilities, as ``recipes.predict_with_scores`` gives them."""
        columns = self.columns(labels)
        raw = self.raw(texts)
        if self.multi_label:
            predicted = [frozenset(columns[j] for j in np.flatnonzero(row > 0)) for row in raw]
        else:
            predicted = [frozenset([columns[int(j)]]) for j in raw.argmax(axis=1)]
        return predicted, by_column(self.probabilities(raw), columns), "probability"

    def raw_scores(self, texts: Sequence[str], labels: Sequence[str]
                   ) -> tuple[list[dict[str, float]], str]:
        return by_column(self.raw(texts), self.columns(labels)), self.raw_score_kind


def by_column(values: np.ndarray, columns: Sequence[str]) -> list[dict[str, float]]:
    return [dict(zip(columns, map(float, row), strict=True)) for row in values]


# -- load (from the archive's members: numpy only, no pickle) --

def load(manifest: Any, read_array: Any) -> ServingModel:
    """The serving model described by a parsed ``serving.json``; ``read_array(name)`` gives
    the named member's array (loaded with ``allow_pickle=False``). :class:`ServingFormError`
    for anything that does not hold together."""
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ServingFormError(f"serving form of an unknown format "
                               f"{_get(manifest, 'format')!r}")
    features = _get(manifest, "features")
    if not isinstance(features, list) or not features:
        raise ServingFormError("serving form has no feature blocks")
    blocks = [_load_block(block, read_array) for block in features]
    return _load_classifier(_get(manifest, "classifier"), blocks, read_array)


def _get(mapping: Any, key: str) -> Any:
    if not isinstance(mapping, dict) or key not in mapping:
        raise ServingFormError(f"serving form has no {key!r}")
    return mapping[key]


def _array(read_array: Any, name: Any, kinds: str, ndim: int) -> np.ndarray:
    if not isinstance(name, str) or not name.endswith(".npy"):
        raise ServingFormError(f"serving form names a member {str(name)[:80]!r}")
    array: np.ndarray = read_array(name)
    if array.dtype.kind not in kinds or array.ndim != ndim:
        raise ServingFormError(f"serving form member {name} is a {array.ndim}-D "
                               f"{array.dtype} array")
    return array


def _load_block(block: Any, read_array: Any) -> TextFeatures:
    analyzer = _get(block, "analyzer")
    if analyzer not in ANALYZERS:
        raise ServingFormError(f"serving form analyzer {str(analyzer)[:40]!r} is not one of "
                               f"{', '.join(ANALYZERS)}")
    ngram = _get(block, "ngramRange")
    if (not isinstance(ngram, list) or len(ngram) != 2
            or not all(isinstance(n, int) and 1 <= n <= 64 for n in ngram) or ngram[0] > ngram[1]):
        raise ServingFormError(f"serving form ngramRange {str(ngram)[:40]} is not [min, max]")
    pattern = _get(block, "tokenPattern")
    try:
        compiled = re.compile(pattern) if analyzer == "word" else None
    except (re.error, TypeError) as exc:
        raise ServingFormError(f"serving form tokenPattern does not compile: {exc}") from exc
    if compiled is not None and compiled.groups > 1:
        raise ServingFormError("serving form tokenPattern has more than one group")
    terms = _array(read_array, _get(block, "terms"), "u", 1)
    ends = _array(read_array, _get(block, "ends"), "iu", 1)
    idf = _array(read_array, _get(block, "idf"), "f", 1)
    if (terms.dtype.itemsize != 1 or len(idf) != len(ends)
            or (len(ends) and (ends[-1] != len(terms) or bool(np.any(np.diff(ends) < 0))
                               or ends[0] < 0))):
        raise ServingFormError("serving form vocabulary does not hold together (terms, ends "
                               "and idf disagree)")
    norm = _get(block, "norm")
    if norm not in ("l2", "l1", None):
        raise ServingFormError(f"serving form norm {str(norm)[:20]!r}")
    return TextFeatures(analyzer, (ngram[0], ngram[1]), bool(_get(block, "lowercase")),
                        compiled, bool(_get(block, "sublinearTf")), norm,
                        Vocabulary(terms.tobytes(), ends), idf)


def _load_classifier(spec: Any, blocks: list[TextFeatures], read_array: Any) -> ServingModel:
    weights = _array(read_array, _get(spec, "weights"), "f", 2)
    intercept = _array(read_array, _get(spec, "intercept"), "f", 1).astype(weights.dtype)
    classes = _get(spec, "classes")
    multi_label = bool(_get(spec, "multiLabel"))
    if not ((classes is None and multi_label) or (isinstance(classes, list) and not multi_label
            and all(isinstance(c, str) for c in classes) and len(classes) == len(intercept))):
        raise ServingFormError("serving form classes do not match its intercept")
    width = sum(len(block.vocabulary) for block in blocks)
    if weights.shape != (len(intercept), width):
        raise ServingFormError(f"serving form weights {weights.shape} do not match "
                               f"{len(intercept)} columns x {width} features")
    kind = _get(spec, "rawScoreKind")
    if kind not in ("margin", "logit", "log-likelihood"):
        raise ServingFormError(f"serving form rawScoreKind {str(kind)[:20]!r}")
    temperature, slopes, intercepts = 1.0, None, None
    if multi_label:
        slopes = _array(read_array, _get(spec, "slopes"), "f", 1)
        intercepts = _array(read_array, _get(spec, "intercepts"), "f", 1)
        if slopes.shape != intercept.shape or intercepts.shape != intercept.shape:
            raise ServingFormError("serving form calibration does not match its labels")
    else:
        temperature = _get(spec, "temperature")
        if not isinstance(temperature, int | float) or not temperature > 0:
            raise ServingFormError(f"serving form temperature {str(temperature)[:20]}")
    return ServingModel(blocks, weights, intercept, classes, multi_label,
                        kind, float(temperature), slopes, intercepts)
