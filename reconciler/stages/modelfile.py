"""Model files: skops, never pickle, loaded only when every type in them is on our allow-list.

A model file is checked three times before any object is built from it: its SHA-256 must match
the version record (a tampered file is refused); what it would unpack must be bounded (see
:func:`check_archive`: member count, total and per-member uncompressed size, compression ratio,
array sizes against their bytes, ``schema.json`` size and depth), because a recorded hash only
says the file is the one recorded, not that it is harmless; and every type named in its schema
must be one we put there ourselves (a file carrying any other type is refused, whatever skops
would trust). skops and scikit-learn are imported only once a file has passed all three (they
take seconds to import), so a refusal is quick.

The same holds for a model held as bytes (:func:`model_bytes`, :func:`load_model_bytes`): what a
worker without the repository computes and sends back, or is sent to score.

Every model file written also carries its serving form (:mod:`reconciler.stages.serving`):
:func:`load_serving` gives it after the same three checks, with neither skops nor scikit-learn
imported, for a quick ``flywheel classify``.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import IO, TYPE_CHECKING, Any

from reconciler import limits
from reconciler.adapters import jsonio
from reconciler.adapters.files import sha256_of
from reconciler.errors import StateError
from reconciler.stages import serving, serving_export

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
    # Ours: the recipe's classifier + its calibration (floats and arrays), nothing callable.
    "reconciler.stages.calibration.CalibratedClassifier",
    "sklearn.feature_extraction.text.TfidfTransformer",
    "sklearn.svm._classes.LinearSVC",
    "sklearn.linear_model._logistic.LogisticRegression",
    "sklearn.naive_bayes.ComplementNB",
    "sklearn.multiclass.OneVsRestClassifier",
    "sklearn.preprocessing._label.LabelBinarizer",
})


def model_bytes(pipeline: Pipeline) -> bytes:
    """The model file's bytes, in memory: :func:`canonical_archive` of what skops writes, so the
    same fitted model gives the same bytes in every process and on every run (``dvc repro``
    leaves ``dvc.lock`` alone), with the pipeline's serving form (:func:`serving_export.export`)."""
    import skops.io as sio

    entries = canonical_entries(sio.dumps(pipeline))
    arrays = {bytes_sha256(content): name for name, content in entries if name.endswith(".npy")}
    return zipped(entries + (serving_export.export(pipeline, arrays) or []))


def bytes_sha256(data: bytes) -> str:
    """The SHA-256 a model file of these bytes has (what :func:`sha256_of` gives for it)."""
    return hashlib.sha256(data).hexdigest()


def write_model_bytes(data: bytes, path: Path) -> str:
    """Write model bytes (atomically, via a temp file) and return the file's SHA-256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.tmp")
    temp.write_bytes(data)
    temp.replace(path)
    return sha256_of(path)


def save_model(pipeline: Pipeline, path: Path) -> str:
    """Write the model (:func:`model_bytes`, atomically) and return its SHA-256."""
    return write_model_bytes(model_bytes(pipeline), path)


#: Every member's timestamp in a canonical archive: the earliest a zip entry can hold.
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def canonical_archive(data: bytes) -> bytes:
    """The same skops archive, with everything that varied from run to run made fixed
    (:func:`canonical_entries`, :func:`zipped`)."""
    return zipped(canonical_entries(data))


def canonical_entries(data: bytes) -> list[tuple[str, bytes]]:
    """A skops archive's members (name, bytes), with everything that varied from run to run
    made fixed.

    skops names each array member after ``id()`` of the array (a memory address), stamps every
    ``__id__`` in ``schema.json`` with ``id()`` too, writes each entry with the current time and
    names ``bytes`` members by ``uuid4``. Here the ids are renumbered 1, 2, … and the members
    renamed in the order the schema first refers to them (ids are only compared for equality, so
    the renumbering keeps shared objects shared, except JSON scalars, never shared: whether two
    attributes held one Python object depends on the process), and the members come in one
    fixed order: ``schema.json``, then by name.
    """
    with zipfile.ZipFile(io.BytesIO(data)) as source:
        schema = json.loads(source.read("schema.json"))
        members = {info.filename: source.read(info) for info in source.infolist()
                   if info.filename != "schema.json"}
    ids: dict[int, int] = {}
    names: dict[str, str] = {}

    def rename(name: str) -> str:
        if name not in names:
            names[name] = f"{len(names) + 1}{PurePosixPath(name).suffix}"
        return names[name]

    count = 0
    for node in schema_objects(schema):
        if isinstance(node.get("__id__"), int):  # skops skips a falsy id: start at 1
            if node.get("__loader__") == "JsonNode":
                # A str, number, bool or None: shared only when one Python object happened to
                # fill two attributes (C and max_df both the spec's default 1.0 in one process,
                # two parsed 1.0s in another). Immutable, so never shared here: the same model
                # gives the same bytes whatever its process's history.
                count += 1
                node["__id__"] = count
            else:
                if node["__id__"] not in ids:
                    count += 1
                    ids[node["__id__"]] = count
                node["__id__"] = ids[node["__id__"]]
        if isinstance(node.get("file"), str) and node["file"] in members:
            node["file"] = rename(node["file"])
    for name in members:  # never referenced (skops writes none such): kept, named after the rest
        rename(name)
    entries = [("schema.json", json.dumps(schema, indent=2).encode("utf-8"))]
    entries += sorted(((names[old], content) for old, content in members.items()),
                      key=lambda entry: _member_order(entry[0]))
    return entries


def zipped(entries: list[tuple[str, bytes]]) -> bytes:
    """The entries as an uncompressed zip, in the order given, every entry stamped with
    :data:`ZIP_EPOCH` and the same permissions (the same entries give the same bytes)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as target:
        for name, content in entries:
            info = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_STORED
            info.create_system = 3  # unix, whatever the machine
            info.external_attr = 0o644 << 16
            target.writestr(info, content)
    return buffer.getvalue()


def _member_order(name: str) -> tuple[int, str]:
    stem = PurePosixPath(name).stem
    return (int(stem) if stem.isdigit() else 0, name)


def load_model(path: Path, expected_sha256: str | None = None, *, display: str = "") -> Pipeline:
    """The model in a model file, once it passed the three checks (see the module docstring)."""
    display, types = _verified(path, expected_sha256, display)
    return _skops_load(path, types, display)


def _check_file(path: Path, display: str) -> None:
    if not path.exists():
        raise StateError("model file is missing (run `dvc pull` to fetch it from the remote)",
                         file=display)
    if not path.is_file():  # a folder, a FIFO or a device (/dev/zero would never end hashing)
        raise StateError("model file is not a regular file", file=display)


def load_serving(source: Path | bytes, expected_sha256: str | None = None, *,
                 display: str = "") -> serving.ServingModel | None:
    """The serving form in a model file (or its bytes), once it passed the three checks of
    :func:`load_model`; None for a file without one (use :func:`load_model`)."""
    display, _ = _verified(source, expected_sha256, display)
    return _serving_form(source, display)


def load_either(source: Path | bytes, expected_sha256: str | None = None, *,
                display: str = "") -> serving.ServingModel | Pipeline:
    """The model in a model file (or its bytes), checked once: its serving form when it has
    one, else its pipeline (loaded by skops, scikit-learn imported)."""
    display, types = _verified(source, expected_sha256, display)
    served = _serving_form(source, display)
    return served if served is not None else _skops_load(source, types, display)


def _verified(source: Path | bytes, expected_sha256: str | None,
              display: str) -> tuple[str, set[str]]:
    """The three checks: a regular file (for a path), the recorded SHA-256, the archive's
    bounds and its types; the name errors give, and the types."""
    if isinstance(source, bytes):
        display = display or "model"
        actual = bytes_sha256(source) if expected_sha256 is not None else ""
    else:
        display = display or str(source)
        _check_file(source, display)
        actual = sha256_of(source) if expected_sha256 is not None else ""
    if expected_sha256 is not None:
        _check_sha256(actual, expected_sha256, display)
    return display, _check_types(source, display)


def _serving_form(source: Path | bytes, display: str) -> serving.ServingModel | None:
    """The checked archive's serving form, or None when it has none."""
    try:
        with zipfile.ZipFile(_zip_source(source)) as archive:
            if serving.MANIFEST not in archive.NameToInfo:
                return None
            manifest = _bounded_json(archive, serving.MANIFEST, display, max_depth=8)

            def read_array(name: str) -> Any:
                from numpy.lib import format as npy

                if name not in archive.NameToInfo:
                    raise serving.ServingFormError(f"serving form member {name[:80]} is missing")
                with archive.open(name) as member:
                    return npy.read_array(member, allow_pickle=False)

            return serving.load(manifest, read_array)
    except serving.ServingFormError as exc:
        raise StateError(f"model file {exc}", file=display) from exc
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise StateError(f"model file serving form cannot be read: {exc}", file=display) from exc


def load_model_bytes(data: bytes, expected_sha256: str | None = None, *,
                     display: str = "model") -> Pipeline:
    """:func:`load_model` of a model file's bytes, held in memory (no file is read): the same
    hash, archive bounds and type allow-list checks, in the same order."""
    display, types = _verified(data, expected_sha256, display)
    return _skops_load(data, types, display)


def _check_sha256(actual: str, expected: str, display: str) -> None:
    if actual != expected:
        raise StateError(f"model file was modified: sha256 {actual} does not match the "
                         f"recorded {expected}", file=display)


def _check_types(source: Path | bytes, display: str) -> set[str]:
    """The archive's bounds, then its schema's types, all on the allow-list; the types."""
    check_archive(source, display)
    types = _schema_types(source, display)
    untrusted = sorted(types - TRUSTED_TYPES)
    if untrusted:
        raise StateError(f"model file holds untrusted types: {', '.join(untrusted[:5])}",
                         file=display)
    return types


def _skops_load(source: Path | bytes, types: set[str], display: str) -> Pipeline:
    """The checked archive's pipeline, its ``types`` trusted (they are all on the allow-list)."""
    import skops.io as sio
    from sklearn.pipeline import Pipeline

    try:
        if isinstance(source, bytes):
            model = sio.loads(source, trusted=sorted(types))
        else:
            model = sio.load(source, trusted=sorted(types))
    except Exception as exc:  # skops raises many kinds on a corrupt file
        raise StateError(f"cannot load model file: {exc}", file=display) from exc
    if not isinstance(model, Pipeline):
        raise StateError(f"model file holds a {type(model).__name__}, not a Pipeline",
                         file=display)
    return model


def _zip_source(source: Path | bytes) -> Path | IO[bytes]:
    """What :class:`zipfile.ZipFile` opens: the file, or the bytes held in memory."""
    return io.BytesIO(source) if isinstance(source, bytes) else source


#: Bounds on what loading one model file may read and allocate (besides
#: :data:`reconciler.limits.MODEL_BYTES`, the sum of its members' uncompressed sizes). Our own
#: files hold some 10-40 members (a thousand or so for a MULTI_LABEL model of many labels), are
#: stored uncompressed (ratio 1) and nest ``schema.json`` about 25 levels deep.
MAX_MEMBERS = 100_000
MAX_RATIO = 100  # uncompressed / compressed, for members over RATIO_FLOOR bytes
RATIO_FLOOR = 1 << 20
SCHEMA_DEPTH = 64


def check_archive(source: Path | bytes, display: str) -> None:
    """Refuse a model file (a path, or its bytes) that would unpack or allocate more than the
    bounds allow.

    Checked from the zip's own directory and each array's header, before anything is unpacked:
    at most :data:`MAX_MEMBERS` members, at most :data:`limits.MODEL_BYTES` in all, no member
    over 1 MiB compressed more than :data:`MAX_RATIO` times (a zip bomb), every ``.npy`` array
    no bigger than its member's bytes (an array header may claim terabytes) and not of object
    type, the same inside every ``.npz`` member (sparse matrices) and ``schema.json`` within
    the record limit and :data:`SCHEMA_DEPTH` levels.
    """
    try:
        with zipfile.ZipFile(_zip_source(source)) as archive:
            _check_members(archive, display, "", nested=False)
    except StateError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError,
            NotImplementedError) as exc:
        raise StateError("not a skops model file (pickle and other formats are refused)",
                         file=display) from exc


def _check_members(archive: zipfile.ZipFile, display: str, inside: str, *, nested: bool) -> None:
    infos = archive.infolist()
    where = f" in {inside}" if inside else ""
    if len(infos) > MAX_MEMBERS:
        raise StateError(f"model file has {len(infos)} members{where}; at most {MAX_MEMBERS} "
                         "are loaded", file=display)
    total = sum(info.file_size for info in infos)
    limit = limits.MODEL_BYTES.value()
    if total > limit:
        raise StateError(f"model file would unpack {total} bytes{where}; the limit is {limit} "
                         f"({limits.MODEL_BYTES.hint})", file=display)
    for info in infos:
        if info.file_size > RATIO_FLOOR and info.file_size > MAX_RATIO * max(info.compress_size,
                                                                              1):
            raise StateError(f"model file member {info.filename[:80]!r}{where} would unpack "
                             f"{info.file_size} bytes from {info.compress_size} (more than "
                             f"{MAX_RATIO} times: a zip bomb?)", file=display)
        if info.filename.endswith(".npy"):
            with archive.open(info) as member:
                _check_array(member, info, display, where)
        elif info.filename.endswith(".npz") and not nested:
            with archive.open(info) as member, zipfile.ZipFile(member) as inner:
                _check_members(inner, display, info.filename[:80], nested=True)


def _check_array(member: Any, info: zipfile.ZipInfo, display: str, where: str) -> None:
    """An ``.npy`` member's header must not claim more bytes than the member holds (numpy
    allocates the whole array from the header before reading a byte of it)."""
    from numpy.lib import format as npy

    version = npy.read_magic(member)
    read_header = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
    shape, _, dtype = read_header(member)
    count = 1
    for size in shape:
        count *= int(size)
    if dtype.hasobject:
        raise StateError(f"model file member {info.filename[:80]!r}{where} is an array of "
                         "Python objects (refused)", file=display)
    if count * dtype.itemsize > info.file_size:
        raise StateError(f"model file member {info.filename[:80]!r}{where} claims an array of "
                         f"{count * dtype.itemsize} bytes in {info.file_size}", file=display)


def _schema_types(source: Path | bytes, display: str) -> set[str]:
    try:
        with zipfile.ZipFile(_zip_source(source)) as archive:
            schema = _bounded_json(archive, "schema.json", display, max_depth=SCHEMA_DEPTH)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise StateError("not a skops model file (pickle and other formats are refused)",
                         file=display) from exc
    return {f"{node.get('__module__')}.{node['__class__']}" for node in schema_objects(schema)
            if "__class__" in node}


def _bounded_json(archive: zipfile.ZipFile, name: str, display: str, *, max_depth: int) -> Any:
    """A JSON member of the archive, within the record size limit and ``max_depth`` levels."""
    info = archive.getinfo(name)
    if info.file_size > limits.RECORD_BYTES.value():
        raise StateError(f"model file {name} is {info.file_size} bytes; the limit is "
                         f"{limits.RECORD_BYTES.value()} ({limits.RECORD_BYTES.hint})",
                         file=display)
    try:
        return jsonio.loads(archive.read(info), max_depth=max_depth)
    except jsonio.JsonError as exc:
        raise StateError(f"model file {name}: {exc}", file=display) from exc


def schema_objects(schema: Any) -> Iterator[dict[str, Any]]:
    """Every JSON object in a skops ``schema.json``, in document order (depth first, as
    written), without recursion. A caller may change an object's scalar values as it goes."""
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            yield node
            stack.extend(reversed(list(node.values())))
        elif isinstance(node, list):
            stack.extend(reversed(node))
