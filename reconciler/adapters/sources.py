"""Where an API request's input file comes from: an ``s3://`` object or an allowed local file.

Comprehend's ``CreateDataset`` names its CSV with ``InputDataConfig.DocumentClassifierInputData
Config.S3Uri``; this module turns that string into bytes in a file the caller owns
(:func:`fetch_to`) or in memory (:func:`fetch`). Why it is built the way it is:

* ``s3://bucket/key`` is read with boto3 and nothing else configured here: the standard AWS
  configuration (``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``, ``AWS_PROFILE`` and the config
  files, ``AWS_ACCESS_KEY_ID``…, instance roles) decides which store and which identity, so any
  S3-compatible server works without a setting of ours. A fresh boto3 session per call, so a
  change of that configuration is seen by the next request. Short time-outs and few retries: a
  request must not hang on a store that is down.
* A local path is a request to read a file on the server, so only files inside the folders the
  operator allows (:class:`SourcePolicy`, default the repository's ``data/``) are read: the path
  is resolved (symlinks, ``..``) before the check, and only a regular file is opened (a FIFO or
  a device never is; the open does not wait). Anything else on the server is refused, and the
  refusal does not say whether the path exists.
* Everything is streamed a MiB at a time and bounded by :attr:`SourcePolicy.max_bytes`: a huge
  object fails with a :class:`~reconciler.errors.DataError` instead of filling memory or disk,
  and the partial copy is deleted.

Errors are the project's tree, one line each, naming the URI: :class:`NotFoundError` for a
missing object or file, :class:`DataError` for a refused URI or a size over the bound,
:class:`SourceAccessError` when the store refuses our identity, :class:`FlywheelError` for the
rest (no credentials, a store that cannot be reached).
"""

from __future__ import annotations

import contextlib
import errno
import io
import ipaddress
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import unquote, urlsplit

from reconciler.adapters.files import OutsideFolder, Unresolvable, resolve_within
from reconciler.core.layout import DATA_DIR
from reconciler.errors import DataError, FlywheelError, NotFoundError

#: The default bound on what one fetch reads.
MAX_SOURCE_BYTES = 512 * 1024 * 1024
#: Bytes read and written at a time.
CHUNK_BYTES = 1 << 20
#: boto3's time-outs (seconds) and retries (after the first attempt) for one request.
S3_CONNECT_TIMEOUT, S3_READ_TIMEOUT, S3_RETRIES = 5, 30, 2

ACCEPTED = ("s3://bucket/key, file:///absolute/path, an absolute path, or a path relative to "
            "the repository")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]")
_MAX_KEY_BYTES = 1024
_SHOWN_CHARS = 300
_NOT_FOUND_CODES = frozenset({"NoSuchKey", "NoSuchBucket", "NotFound", "404"})
_ACCESS_CODES = frozenset({"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch",
                           "AllAccessDisabled", "InvalidToken", "ExpiredToken", "403"})


class SourceAccessError(FlywheelError):
    """The store refused our identity for this object (``AccessDenied``, a wrong key, 403)."""


@dataclass(frozen=True)
class SourcePolicy:
    """What :func:`fetch_to` may read. Build one with :meth:`of` (which resolves the paths)."""

    root: Path
    #: Folders local inputs may come from (resolved). Empty: no local input at all.
    allowed: tuple[Path, ...]
    max_bytes: int = MAX_SOURCE_BYTES

    @classmethod
    def of(cls, root: Path, allowed: tuple[Path, ...] | list[Path] | None = None, *,
           max_bytes: int = MAX_SOURCE_BYTES) -> SourcePolicy:
        """The policy for the repository at ``root``: local files from ``allowed`` (relative
        folders are taken under ``root``; default ``root / "data"``), at most ``max_bytes``."""
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
        real_root = root.resolve()
        folders = (real_root / DATA_DIR,) if allowed is None else tuple(allowed)
        return cls(real_root, tuple((real_root / f).resolve() for f in folders), max_bytes)

    def shown_folders(self) -> str:
        """The allowed folders as a message says them (relative to the root when inside)."""
        if not self.allowed:
            return "none (local files are not accepted here)"
        shown = []
        for folder in self.allowed:
            shown.append(f"{folder.relative_to(self.root)}/" if folder.is_relative_to(self.root)
                         and folder != self.root else f"{folder}/")
        return ", ".join(shown)


def fetch_to(uri: str, policy: SourcePolicy, target: Path) -> int:
    """Copy what ``uri`` names into ``target`` (created or truncated); the bytes written.

    ``target`` is only opened once the source is found and open: a refused or missing source
    leaves it as it was. A failure after that (over the bound, a broken connection) deletes it.
    """
    with _open_source(uri, policy) as chunks, _sink(target) as handle:
        return _copy(uri, chunks, handle, policy)


def fetch(uri: str, policy: SourcePolicy) -> bytes:
    """What ``uri`` names, in memory (bounded by ``policy.max_bytes``, like :func:`fetch_to`)."""
    buffer = io.BytesIO()
    with _open_source(uri, policy) as chunks:
        _copy(uri, chunks, buffer, policy)
    return buffer.getvalue()


def _copy(uri: str, chunks: Iterator[bytes], handle: IO[bytes], policy: SourcePolicy) -> int:
    total = 0
    for chunk in chunks:
        total += len(chunk)
        if total > policy.max_bytes:
            raise _too_big(uri, policy, f"more than {policy.max_bytes} bytes")
        handle.write(chunk)
    return total


def _too_big(uri: str, policy: SourcePolicy, size: str) -> DataError:
    return DataError(f"{_shown(uri)}: the file is too big ({size}; at most {policy.max_bytes} "
                     f"bytes are read)")


@contextlib.contextmanager
def _sink(target: Path) -> Iterator[IO[bytes]]:
    handle = target.open("wb")
    try:
        with handle:
            yield handle
    except BaseException:
        with contextlib.suppress(OSError):
            target.unlink()
        raise


@contextlib.contextmanager
def _open_source(uri: str, policy: SourcePolicy) -> Iterator[Iterator[bytes]]:
    if not isinstance(uri, str) or not uri.strip():
        raise DataError(f"no input file named: give {ACCEPTED}")
    if uri[:5].lower() == "s3://":
        bucket, key = _split_s3(uri)
        with _open_s3(uri, bucket, key, policy) as chunks:
            yield chunks
        return
    match = _SCHEME.match(uri)
    if match and match.group().lower() != "file:":
        raise DataError(f"{_shown(uri)}: the scheme {match.group()[:-1]!r} is not accepted: "
                        f"give {ACCEPTED}")
    path = _file_uri_path(uri) if match else uri
    with _open_local(uri, path, policy) as chunks:
        yield chunks


# --- S3 ---------------------------------------------------------------------------------------

def _split_s3(uri: str) -> tuple[str, str]:
    """``(bucket, key)`` of an ``s3://`` URI, taken literally (no percent-decoding: S3 keys may
    hold ``%``, ``?`` and ``#``), checked against S3's naming rules."""
    bucket, _, key = uri[5:].partition("/")
    if not _BUCKET.fullmatch(bucket) or ".." in bucket or _is_ip(bucket):
        raise DataError(f"{_shown(uri)}: {bucket[:70]!r} is not a valid S3 bucket name (3 to 63 "
                        f"lowercase letters, digits, dots and hyphens)")
    if not key or key.endswith("/"):
        raise DataError(f"{_shown(uri)}: names a prefix, not an object: give one CSV file")
    if len(key.encode("utf-8", "surrogatepass")) > _MAX_KEY_BYTES:
        raise DataError(f"{_shown(uri)}: the key is longer than S3's {_MAX_KEY_BYTES} bytes")
    return bucket, key


def _is_ip(name: str) -> bool:
    try:
        ipaddress.IPv4Address(name)
    except ValueError:
        return False
    return True


@contextlib.contextmanager
def _open_s3(uri: str, bucket: str, key: str, policy: SourcePolicy) -> Iterator[Iterator[bytes]]:
    endpoint = "the configured endpoint"
    try:
        client = s3_client()
        endpoint = client.meta.endpoint_url
        response = client.get_object(Bucket=bucket, Key=key)
    except Exception as exc:
        raise s3_error(uri, exc, endpoint) from exc
    body = response["Body"]
    try:
        size = response.get("ContentLength")
        if isinstance(size, int) and size > policy.max_bytes:
            raise _too_big(uri, policy, f"{size} bytes")
        yield _s3_chunks(uri, body, endpoint)
    finally:
        with contextlib.suppress(Exception):
            body.close()


def s3_client() -> Any:
    """A boto3 S3 client from the standard AWS configuration (a fresh session: thread-safe),
    with our time-outs and retries."""
    # boto3 is slow to import: only when S3 is used
    import boto3  # type: ignore[import-untyped, unused-ignore]
    from botocore.config import Config  # type: ignore[import-untyped, unused-ignore]

    config = Config(connect_timeout=S3_CONNECT_TIMEOUT, read_timeout=S3_READ_TIMEOUT,
                    retries={"max_attempts": S3_RETRIES, "mode": "standard"})
    return boto3.session.Session().client("s3", config=config)


def _s3_chunks(uri: str, body: Any, endpoint: str) -> Iterator[bytes]:
    while True:
        try:
            chunk = body.read(CHUNK_BYTES)
        except Exception as exc:
            raise s3_error(uri, exc, endpoint) from exc
        if not chunk:
            return
        yield chunk


def s3_error(uri: str, exc: Exception, endpoint: str) -> FlywheelError:
    """A botocore error (or one of its HTTP library's) as one of ours; ``exc`` itself when it
    is ours already."""
    from botocore import exceptions as boto  # type: ignore[import-untyped, unused-ignore]

    shown = _shown(uri)
    if isinstance(exc, FlywheelError):
        return exc
    if isinstance(exc, boto.ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = str(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
        said = _one_line(str(error.get("Message") or code or status))
        if code == "NoSuchBucket":
            return NotFoundError(f"{shown}: no such bucket at {endpoint}")
        if code in _NOT_FOUND_CODES or status == "404":
            return NotFoundError(f"{shown}: no such object at {endpoint}")
        if code in _ACCESS_CODES or status == "403":
            return SourceAccessError(f"{shown}: access denied by {endpoint} ({code or status}: "
                                     f"{said}); check the AWS credentials and the object's "
                                     f"permissions")
        return FlywheelError(f"{shown}: S3 at {endpoint} refused the read ({code or status}: "
                             f"{said})")
    if isinstance(exc, boto.NoCredentialsError | boto.PartialCredentialsError):
        return FlywheelError(f"no AWS credentials for reading {shown}: set AWS_ACCESS_KEY_ID and "
                             f"AWS_SECRET_ACCESS_KEY, or a profile (AWS_PROFILE)")
    if isinstance(exc, boto.ProfileNotFound):
        return FlywheelError(f"cannot read {shown}: {_one_line(str(exc))}")
    if isinstance(exc, boto.ConnectionError | boto.ReadTimeoutError):
        return FlywheelError(f"cannot reach S3 at {endpoint} for {shown}: "
                             f"{_one_line(str(exc))}")
    return FlywheelError(f"cannot read {shown} from S3 at {endpoint}: "
                         f"{type(exc).__name__}: {_one_line(str(exc))}")


# --- Local files ------------------------------------------------------------------------------

def _file_uri_path(uri: str) -> str:
    """The absolute path of a ``file:`` URI (``file:///p`` or ``file://localhost/p``,
    percent-decoded)."""
    parts = urlsplit(uri)
    if parts.netloc not in ("", "localhost") or parts.query or parts.fragment \
            or not parts.path.startswith("/") or not uri[5:].startswith("//"):
        raise DataError(f"{_shown(uri)}: a file URI must be file:///absolute/path (no host, "
                        f"query or fragment)")
    return unquote(parts.path)


@contextlib.contextmanager
def _open_local(uri: str, path: str, policy: SourcePolicy) -> Iterator[Iterator[bytes]]:
    real = _allowed_path(uri, path, policy)
    refused = DataError(f"{_shown(uri)}: not a regular file")
    try:
        if not stat.S_ISREG(os.stat(real, follow_symlinks=False).st_mode):
            raise refused  # a FIFO or a device is never even opened
        # Resolved already: O_NOFOLLOW refuses a link swapped in since; O_NONBLOCK, a FIFO
        # swapped in since, without waiting for a writer.
        fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    except FileNotFoundError as exc:
        raise NotFoundError(f"{_shown(uri)}: no such file") from exc
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise DataError(f"{_shown(uri)}: the path changed into a link while opened") from exc
        raise FlywheelError(f"cannot read {_shown(uri)}: {exc.strerror}") from exc
    with os.fdopen(fd, "rb", buffering=0) as handle:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise refused
        if info.st_size > policy.max_bytes:
            raise _too_big(uri, policy, f"{info.st_size} bytes")
        yield _file_chunks(uri, handle)


def _file_chunks(uri: str, handle: IO[bytes]) -> Iterator[bytes]:
    while True:
        try:
            chunk = handle.read(CHUNK_BYTES)
        except OSError as exc:
            raise FlywheelError(f"cannot read {_shown(uri)}: {exc.strerror}") from exc
        if not chunk:
            return
        yield chunk


def _allowed_path(uri: str, path: str, policy: SourcePolicy) -> Path:
    """``path`` (absolute, or relative to the repository root) resolved, if it is inside one of
    the allowed folders; a :class:`DataError` otherwise that does not tell whether it exists."""
    refused = DataError(f"{_shown(uri)}: local files are read only from {policy.shown_folders()}"
                        f"; give a file there or an s3:// URI")
    if "\0" in path:
        raise refused
    candidate = policy.root / path  # an absolute path stays itself
    for folder in policy.allowed:
        try:
            return resolve_within(folder, ".", candidate)
        except OutsideFolder:
            continue
        except Unresolvable as exc:
            raise DataError(f"{_shown(uri)}: the path cannot be resolved "
                            f"({_one_line(str(exc))})") from exc
    raise refused


def _shown(uri: str) -> str:
    """``uri`` as a message names it: on one line, cut at a few hundred characters."""
    shown = uri if uri.isprintable() else ascii(uri)
    return shown if len(shown) <= _SHOWN_CHARS else shown[:_SHOWN_CHARS] + "…"


def _one_line(text: str) -> str:
    return " ".join(text.split())[:_SHOWN_CHARS]
