"""The exchange store: bytes the coordinator and a cluster's workers pass through shared storage.

An S3 bucket (any S3-compatible server: ``AWS_ENDPOINT_URL_S3`` and the rest of the standard AWS
configuration, on the coordinator and on every worker), content-addressed: an object's key is
its SHA-256 (``<prefix>/sha256/ab/cdef…``), so a write never replaces other bytes, the same
documents are sent once however many tasks read them, and whoever reads checks what arrived
against the name it asked for (:func:`reconciler.stages.remote._fetch`). The store holds copies
only: the repository's ``data/``, DVC's cache and remote, and the lake stay the record.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from reconciler.adapters.sources import s3_client, s3_error
from reconciler.errors import DataError, FlywheelError

#: No blob is larger (a model file or a prepared-documents file is far smaller).
MAX_BLOB_BYTES = 4 * 1024 ** 3
_URL = re.compile(r"s3://(?P<bucket>[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9])(?:/(?P<prefix>[^\s]*))?")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class ExchangeStore:
    bucket: str
    prefix: str  # "" or ending in "/"

    @classmethod
    def from_url(cls, url: str) -> ExchangeStore:
        """``s3://BUCKET`` or ``s3://BUCKET/PREFIX``; anything else is refused in one line."""
        match = _URL.fullmatch(url.strip())
        if match is None or ".." in match["bucket"]:
            raise FlywheelError(f"exchange store {url[:200]!r}: expected s3://BUCKET[/PREFIX] "
                                "(a bucket every worker can reach)")
        prefix = (match["prefix"] or "").strip("/")
        return cls(match["bucket"], f"{prefix}/" if prefix else "")

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def key(self, sha256: str) -> str:
        if not _SHA256.fullmatch(sha256):
            raise DataError(f"{sha256[:80]!r} is not a SHA-256")
        return f"{self.prefix}sha256/{sha256[:2]}/{sha256[2:]}"

    def check(self) -> None:
        """Refuse a bucket that is not there or not ours, before anything is recorded."""
        client = s3_client()
        try:
            client.head_bucket(Bucket=self.bucket)
        except Exception as exc:
            raise FlywheelError(f"exchange store {self.url}: "
                                f"{s3_error(self.url, exc, client.meta.endpoint_url)}") from exc

    def put(self, data: bytes) -> str:
        """Store ``data`` under its SHA-256 (once: bytes already there are not sent again)."""
        sha256 = hashlib.sha256(data).hexdigest()
        key, client = self.key(sha256), s3_client()
        uri = f"s3://{self.bucket}/{key}"
        try:
            try:
                head = client.head_object(Bucket=self.bucket, Key=key)
                if head.get("ContentLength") == len(data):
                    return sha256
            except Exception as exc:
                if _status(exc) != 404:
                    raise
            client.put_object(Bucket=self.bucket, Key=key, Body=data)
        except Exception as exc:
            raise s3_error(uri, exc, client.meta.endpoint_url) from exc
        return sha256

    def get(self, sha256: str, size: int) -> bytes:
        """The bytes stored under ``sha256``, read up to ``size`` (the size the writer gave)."""
        if not 0 <= size <= MAX_BLOB_BYTES:
            raise DataError(f"blob {sha256[:64]}: a size of {size} bytes is out of bounds")
        key, client = self.key(sha256), s3_client()
        uri = f"s3://{self.bucket}/{key}"
        try:
            body = client.get_object(Bucket=self.bucket, Key=key)["Body"]
            chunks, read = [], 0
            try:
                while read <= size and (chunk := body.read(min(_CHUNK, size + 1 - read))):
                    chunks.append(chunk)
                    read += len(chunk)
            finally:
                body.close()
        except Exception as exc:
            raise s3_error(uri, exc, client.meta.endpoint_url) from exc
        if read != size:
            raise DataError(f"{uri}: {read if read <= size else 'more than ' + str(size)} bytes "
                            f"where {size} were stored")
        return b"".join(chunks)


def _status(exc: Exception) -> int | None:
    response: Any = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return None
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return int(status) if isinstance(status, int) else None
