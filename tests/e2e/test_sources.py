"""reconciler/adapters/sources.py against a real S3-compatible server (rclone serve s3).

The AWS variables are set with monkeypatch: that is the reader's configuration, as an operator
would set it, not a mock; every call goes over HTTP to rclone.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path

import pytest
from s3_server import S3Server, s3_server  # noqa: F401  (s3_server: the fixture)

from reconciler.adapters.sources import SourceAccessError, SourcePolicy, fetch, fetch_to
from reconciler.errors import DataError, FlywheelError, NotFoundError

CSV = b"spam,win a prize now\nham,see you at lunch\n"


def point_at(server: S3Server, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in server.env().items():
        monkeypatch.setenv(name, value)


def bucket() -> str:
    return f"test-{secrets.token_hex(6)}"


def policy(tmp_path: Path, max_bytes: int | None = None) -> SourcePolicy:
    (tmp_path / "data").mkdir(exist_ok=True)
    if max_bytes is None:
        return SourcePolicy.of(tmp_path)
    return SourcePolicy.of(tmp_path, max_bytes=max_bytes)


def test_an_uploaded_csv_is_fetched_into_the_target(s3_server: S3Server, tmp_path: Path,  # noqa: F811
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    point_at(s3_server, monkeypatch)
    name = bucket()
    s3_server.put(name, "input/train.csv", CSV)
    target = tmp_path / "copy.csv"
    written = fetch_to(f"s3://{name}/input/train.csv", policy(tmp_path), target)
    assert written == len(CSV)
    assert target.read_bytes() == CSV
    assert fetch(f"s3://{name}/input/train.csv", policy(tmp_path)) == CSV


def test_an_object_of_several_chunks_arrives_whole(s3_server: S3Server, tmp_path: Path,  # noqa: F811
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    point_at(s3_server, monkeypatch)
    name = bucket()
    data = secrets.token_bytes(3 * (1 << 20) + 17)
    s3_server.put(name, "big.csv", data)
    target = tmp_path / "copy.csv"
    assert fetch_to(f"s3://{name}/big.csv", policy(tmp_path), target) == len(data)
    assert target.read_bytes() == data


def test_a_missing_key_is_not_found(s3_server: S3Server, tmp_path: Path,  # noqa: F811
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    point_at(s3_server, monkeypatch)
    name = bucket()
    s3_server.put(name, "there.csv", CSV)
    uri = f"s3://{name}/not-there.csv"
    with pytest.raises(NotFoundError) as caught:
        fetch_to(uri, policy(tmp_path), tmp_path / "copy.csv")
    assert uri in str(caught.value) and "\n" not in str(caught.value)
    assert "no such object" in str(caught.value)
    assert not (tmp_path / "copy.csv").exists()


def test_a_missing_bucket_is_not_found(s3_server: S3Server, tmp_path: Path,  # noqa: F811
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    point_at(s3_server, monkeypatch)
    uri = f"s3://{bucket()}/train.csv"
    with pytest.raises(NotFoundError, match="no such bucket") as caught:
        fetch_to(uri, policy(tmp_path), tmp_path / "copy.csv")
    assert uri in str(caught.value)


@pytest.mark.parametrize("key", ["", "input/"])
def test_a_prefix_is_refused_before_any_request(s3_server: S3Server, tmp_path: Path,  # noqa: F811
                                                monkeypatch: pytest.MonkeyPatch, key: str) -> None:
    point_at(s3_server, monkeypatch)
    name = bucket()
    s3_server.put(name, "input/train.csv", CSV)
    with pytest.raises(DataError, match="names a prefix, not an object: give one CSV file"):
        fetch_to(f"s3://{name}/{key}", policy(tmp_path), tmp_path / "copy.csv")


def test_wrong_credentials_are_an_access_error(s3_server: S3Server, tmp_path: Path,  # noqa: F811
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    point_at(s3_server, monkeypatch)
    name = bucket()
    s3_server.put(name, "train.csv", CSV)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    uri = f"s3://{name}/train.csv"
    with pytest.raises(SourceAccessError, match="access denied") as caught:
        fetch_to(uri, policy(tmp_path), tmp_path / "copy.csv")
    assert uri in str(caught.value) and "\n" not in str(caught.value)
    assert not isinstance(caught.value, NotFoundError)


def test_no_credentials_at_all_says_what_to_set(s3_server: S3Server, tmp_path: Path,  # noqa: F811
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    point_at(s3_server, monkeypatch)
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance role to look for
    uri = f"s3://{bucket()}/train.csv"
    with pytest.raises(FlywheelError, match="no AWS credentials for reading s3://") as caught:
        fetch_to(uri, policy(tmp_path), tmp_path / "copy.csv")
    assert "AWS_ACCESS_KEY_ID" in str(caught.value)


def test_an_object_over_the_bound_is_refused_and_leaves_no_target(
        s3_server: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    point_at(s3_server, monkeypatch)
    name = bucket()
    s3_server.put(name, "train.csv", CSV)
    target = tmp_path / "copy.csv"
    with pytest.raises(DataError, match="too big") as caught:
        fetch_to(f"s3://{name}/train.csv", policy(tmp_path, max_bytes=len(CSV) - 1), target)
    assert f"s3://{name}/train.csv" in str(caught.value)
    assert not target.exists()
    # exactly at the bound is fine
    assert fetch_to(f"s3://{name}/train.csv", policy(tmp_path, max_bytes=len(CSV)), target) \
        == len(CSV)


def test_a_stopped_server_is_cannot_reach_quickly(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    with S3Server(tmp_path / "server") as server:
        point_at(server, monkeypatch)
        name = bucket()
        server.put(name, "train.csv", CSV)
        assert fetch(f"s3://{name}/train.csv", policy(tmp_path)) == CSV
    assert server.process is not None and server.process.poll() is not None
    started = time.monotonic()
    with pytest.raises(FlywheelError, match="cannot reach S3 at") as caught:
        fetch_to(f"s3://{name}/train.csv", policy(tmp_path), tmp_path / "copy.csv")
    assert time.monotonic() - started < 15
    assert server.endpoint in str(caught.value) and "\n" not in str(caught.value)
    assert not (tmp_path / "copy.csv").exists()
