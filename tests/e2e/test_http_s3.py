"""CreateDataset from a real S3-compatible store: `rclone serve s3` on loopback, the real
`flywheel serve` started with the standard AWS variables pointing at it (the SERVER process
reads the object, through boto3 and nothing configured of ours), real boto3 as the client."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from api_harness import ARN, ApiServer, commits, reconciled_repo, train_rows
from botocore.exceptions import ClientError
from conftest import git
from s3_server import S3Server

FLYWHEEL = f"{ARN}flywheel/sections"
BUCKET = "uploads"


def csv_bytes(rows: list[tuple[str, str]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue().encode("utf-8")


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with S3Server() as server:
        yield server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, s3: S3Server) -> Iterator[ApiServer]:
    root = reconciled_repo(tmp_path_factory.mktemp("s3-api") / "repo")
    with ApiServer(root, watch=False, env=s3.env()) as running:
        yield running


def error_of(call: Any, **params: Any) -> tuple[str, str, int]:
    with pytest.raises(ClientError) as info:
        call(**params)
    response = info.value.response
    return (response["Error"]["Code"], response["Error"]["Message"],
            response["ResponseMetadata"]["HTTPStatusCode"])


def create(comprehend: Any, name: str, uri: str) -> Any:
    return comprehend.create_dataset(
        FlywheelArn=FLYWHEEL, DatasetName=name, DatasetType="TRAIN",
        InputDataConfig={"DocumentClassifierInputDataConfig": {"S3Uri": uri}})


def untouched(root: Path, name: str) -> None:
    """Nothing of dataset ``name`` anywhere: no file, no declaration, no temp copy."""
    assert not (root / f"data/sections/{name}.csv").exists()
    spec = yaml.safe_load((root / "specs/sections.yaml").read_text("utf-8"))
    assert name not in [d["name"] for d in spec["datasets"]]
    incoming = root / ".flywheel/incoming"
    assert not incoming.exists() or list(incoming.iterdir()) == []
    assert git(root, "status", "--porcelain", "--", "specs", "data/sections") == ""


def test_create_dataset_reads_the_object_from_s3(server: ApiServer, s3: S3Server) -> None:
    rows = train_rows(6, skip=15)
    data = csv_bytes(rows)
    s3.put(BUCKET, "batches/2024/more.csv", data)
    comprehend = server.client()
    uri = f"s3://{BUCKET}/batches/2024/more.csv"
    arn = create(comprehend, "from-s3", uri)["DatasetArn"]
    assert arn == f"{FLYWHEEL}/dataset/from-s3"
    assert (server.root / "data/sections/from-s3.csv").read_bytes() == data
    assert commits(server.root)[0].startswith("CreateDataset ")
    assert commits(server.root)[0] == f"CreateDataset sections/from-s3 (TRAIN, {len(rows)} " \
        "documents)"
    assert git(server.root, "show", "--name-only", "--format=", "HEAD").splitlines() == [
        "data/sections/from-s3.csv", "specs/sections.yaml"]
    props = comprehend.describe_dataset(DatasetArn=arn)["DatasetProperties"]
    assert props["NumberOfDocuments"] == len(rows) == 24
    assert props["Status"] == "COMPLETED"
    assert props["DatasetS3Uri"] == "data/sections/from-s3.csv"


@pytest.mark.parametrize(("key", "code", "words"), [
    ("absent/none.csv", "ResourceNotFoundException", "no such object"),
    ("folder/", "InvalidRequestException", "names a prefix, not an object"),
], ids=["missing-key", "prefix"])
def test_what_s3_cannot_give_is_refused_by_name(server: ApiServer, s3: S3Server, key: str,
                                                code: str, words: str) -> None:
    s3.put(BUCKET, "folder/inside.csv", csv_bytes(train_rows(3, skip=30)))
    before = commits(server.root)
    uri = f"s3://{BUCKET}/{key}"
    found, message, status = error_of(create, comprehend=server.client(), name="refused",
                                      uri=uri)
    assert (found, status) == (code, 400), message
    assert message.startswith(uri) and words in message
    assert commits(server.root) == before
    untouched(server.root, "refused")


def test_a_bad_row_in_an_s3_object_is_named_by_its_uri_and_line(server: ApiServer,
                                                                 s3: S3Server) -> None:
    rows = [*train_rows(2, skip=40), ("no-such-label", "a document with an unknown label")]
    s3.put(BUCKET, "bad/rows.csv", csv_bytes(rows))
    uri = f"s3://{BUCKET}/bad/rows.csv"
    before = commits(server.root)
    code, message, status = error_of(create, comprehend=server.client(), name="bad-rows",
                                     uri=uri)
    assert (code, status) == ("InvalidRequestException", 400)
    assert message.startswith(f"{uri}:{len(rows)}: ") and "no-such-label" in message
    assert commits(server.root) == before
    untouched(server.root, "bad-rows")


def test_wrong_s3_credentials_are_a_clear_client_error(server: ApiServer, s3: S3Server) -> None:
    s3.put(BUCKET, "denied/ok.csv", csv_bytes(train_rows(3, skip=20)))
    uri = f"s3://{BUCKET}/denied/ok.csv"
    before = commits(server.root)
    with ApiServer(server.root, watch=False,
                   env={**s3.env(), "AWS_SECRET_ACCESS_KEY": "wrong"}) as wrong:
        code, message, status = error_of(create, comprehend=wrong.client(), name="denied",
                                         uri=uri)
    # SourceAccessError is a user's error (InvalidRequestException), not a 500: the server
    # works, its S3 identity is refused, and the message says which object and why.
    assert (code, status) == ("InvalidRequestException", 400), message
    assert message.startswith(f"{uri}: access denied by {s3.endpoint}")
    assert "SignatureDoesNotMatch" in message and "check the AWS credentials" in message
    assert commits(server.root) == before
    untouched(server.root, "denied")
