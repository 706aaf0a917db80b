"""Model files: skops, never pickle, loaded only when every type in them is on our allow-list.

A model file is checked twice before any object is built from it: its SHA-256 must match the
version record (a tampered file is refused), and every type named in its schema must be one we
put there ourselves (a file carrying any other type is refused, whatever skops would trust).
skops and scikit-learn are imported only once a file has passed both checks (they take seconds
to import), so a refusal is quick.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler.errors import StateError

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

TRUSTED_TYPES: frozenset[str] = frozenset({
    "builtins.dict", "builtins.list", "builtins.str", "builtins.tuple", "builtins.int",
    "builtins.float", "builtins.bool", "builtins.NoneType", "builtins.slice",
    "numpy.float32", "numpy.float64", "numpy.int8", "numpy.int32", "numpy.int64",
    "numpy.ndarray", "numpy.dtype", "numpy.str_", "numpy.bool_",
    "scipy.sparse._csr.csr_matrix",
    "sklearn.pipeline.Pipeline", "sklearn.pipeline.FeatureUnion",
    "reconciler.stages.recipes.CompactTfidfVectorizer",
    "sklearn.feature_extraction.text.TfidfTransformer",
    "sklearn.svm._classes.LinearSVC",
    "sklearn.linear_model._logistic.LogisticRegression",
    "sklearn.naive_bayes.ComplementNB",
    "sklearn.multiclass.OneVsRestClassifier",
    "sklearn.preprocessing._label.LabelBinarizer",
})


def save_model(pipeline: Pipeline, path: Path) -> str:
    """Write the model (atomically, via a temp file) and return its SHA-256."""
    import skops.io as sio

    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.tmp")
    sio.dump(pipeline, temp)
    temp.replace(path)
    return sha256_of(path)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def load_model(path: Path, expected_sha256: str | None = None, *, display: str = "") -> Pipeline:
    display = display or str(path)
    if not path.exists():
        raise StateError("model file is missing (run `dvc pull` to fetch it from the remote)",
                         file=display)
    if not path.is_file():  # a folder, a FIFO or a device (/dev/zero would never end hashing)
        raise StateError("model file is not a regular file", file=display)
    if expected_sha256 is not None:
        actual = sha256_of(path)
        if actual != expected_sha256:
            raise StateError(f"model file was modified: sha256 {actual} does not match the "
                             f"recorded {expected_sha256}", file=display)
    types = _schema_types(path, display)
    untrusted = sorted(types - TRUSTED_TYPES)
    if untrusted:
        raise StateError(f"model file holds untrusted types: {', '.join(untrusted[:5])}",
                         file=display)
    import skops.io as sio
    from sklearn.pipeline import Pipeline

    try:
        model = sio.load(path, trusted=sorted(types))
    except Exception as exc:  # skops raises many kinds on a corrupt file
        raise StateError(f"cannot load model file: {exc}", file=display) from exc
    if not isinstance(model, Pipeline):
        raise StateError(f"model file holds a {type(model).__name__}, not a Pipeline",
                         file=display)
    return model


def _schema_types(path: Path, display: str) -> set[str]:
    try:
        with zipfile.ZipFile(path) as archive:
            schema = json.loads(archive.read("schema.json"))
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise StateError("not a skops model file (pickle and other formats are refused)",
                         file=display) from exc
    types: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "__class__" in node:
                types.add(f"{node.get('__module__')}.{node['__class__']}")
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    return types
