"""SigV4 on the Comprehend-compatible API end to end: a real ``flywheel serve --credentials-file``
over a real git repository, called by real boto3, the real aws CLI and requests signed by
botocore's own signer and sent by hand (a stale or future clock, a body changed after signing).
Also the start-up refusals: a reachable host without credentials, a missing or malformed file.

One server for the module (``--no-watch``: nothing here needs an iteration), over a plain
``flywheel init`` repository with one committed spec; names are distinct per test.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import botocore
import botocore.auth
import pytest
from api_harness import (
    ARN,
    SPEC,
    ApiServer,
    aws,
    commits,
    free_port,
    train_rows,
)
from api_harness import test_rows as held_out_rows  # not named test_*: not collected
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from conftest import FLYWHEEL, commit, run_cli, write_csv

SECTIONS = f"{ARN}flywheel/sections"
ROLE = "arn:aws:iam::123456789012:role/flywheel"
#: Two profiles, as ``aws configure`` writes them; secrets with the characters AWS uses.
KEYS = {"AKIAFIRSTEXAMPLE0001": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        "AKIASECONDEXAMPLE002": "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY"}
FIRST, SECOND = KEYS
CREDENTIALS = f"""\
[default]
aws_access_key_id = {FIRST}
aws_secret_access_key = {KEYS[FIRST]}

[second]
aws_access_key_id = {SECOND}
aws_secret_access_key = {KEYS[SECOND]}
region = us-east-1
"""
MISMATCH = "The request signature we calculated does not match the signature you provided."


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    base = tmp_path_factory.mktemp("auth")
    root = base / "repo"
    run_cli(base, "init", str(root))
    write_csv(root / "data/sections/train-1.csv", train_rows(5))
    write_csv(root / "data/sections/test.csv", held_out_rows(3))
    (root / "specs/sections.yaml").write_text(SPEC, "utf-8")
    commit(root, "the sections flywheel")
    credentials = base / "credentials"
    credentials.write_text(CREDENTIALS, "utf-8")
    with ApiServer(root, watch=False,
                   extra=("--credentials-file", str(credentials))) as running:
        yield running


def signed(server: ApiServer, access_key: str = FIRST, secret: str | None = None) -> Any:
    return server.client(access_key=access_key,
                         secret_key=KEYS.get(access_key, "x") if secret is None else secret)


def failure(call: Any, **params: Any) -> tuple[int, str, str]:
    """HTTP status, error code and message of a call that must fail."""
    with pytest.raises(ClientError) as info:
        call(**params)
    response = info.value.response
    return (response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"],
            response["Error"]["Message"])


def create_params(name: str) -> dict[str, Any]:
    return {"FlywheelName": name, "DataAccessRoleArn": ROLE,
            "DataLakeS3Uri": "s3://flywheel-lake/prefix", "ModelType": "DOCUMENT_CLASSIFIER",
            "TaskConfig": {"LanguageCode": "en", "DocumentClassificationConfig": {
                "Mode": "MULTI_CLASS", "Labels": ["database", "games"]}}}


def sign_by_hand(server: ApiServer, operation: str, body: bytes, *,
                 at: datetime | None = None,
                 monkeypatch: pytest.MonkeyPatch | None = None) -> dict[str, str]:
    """The headers botocore's signer adds to a Comprehend call to ``server`` (Host excepted:
    the HTTP client sends it), signed at ``at`` (UTC) when given."""
    if at is not None:
        assert monkeypatch is not None
        naive = at.astimezone(UTC).replace(tzinfo=None)  # botocore's clock is naive UTC
        monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *_a, **_k: naive)
    request = AWSRequest(method="POST", url=server.url + "/", data=body, headers={
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": f"Comprehend_20171127.{operation}"})
    SigV4Auth(Credentials(FIRST, KEYS[FIRST]), "comprehend", "us-east-1").add_auth(request)
    if at is not None:
        assert request.headers["X-Amz-Date"] == naive.strftime("%Y%m%dT%H%M%SZ")
    return {name: str(value) for name, value in request.headers.items()}


def send(server: ApiServer, body: bytes,
         headers: dict[str, str]) -> tuple[int, dict[str, Any], str]:
    """One request over urllib: status, JSON body, X-Amzn-ErrorType ("" when absent)."""
    request = urllib.request.Request(server.url + "/", body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return (answer.status, json.loads(answer.read()),
                    answer.headers.get("X-Amzn-ErrorType", ""))
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read()), exc.headers.get("X-Amzn-ErrorType", "")


# signed clients ----------------------------------------------------------------------------


@pytest.mark.parametrize("access_key", [FIRST, SECOND], ids=["default-profile",
                                                             "second-profile"])
def test_a_client_signed_with_either_configured_key_is_served(server: ApiServer,
                                                              access_key: str) -> None:
    comprehend = signed(server, access_key)
    listed = comprehend.list_flywheels()["FlywheelSummaryList"]
    assert SECTIONS in [s["FlywheelArn"] for s in listed]
    props = comprehend.describe_flywheel(FlywheelArn=SECTIONS)["FlywheelProperties"]
    assert props["FlywheelArn"] == SECTIONS
    assert props["TaskConfig"]["DocumentClassificationConfig"]["Labels"] == [
        "database", "games", "mail", "sound"]


def test_the_aws_cli_with_a_configured_key_works_and_a_wrong_secret_exits_255(
        server: ApiServer) -> None:
    good = {"AWS_ACCESS_KEY_ID": SECOND, "AWS_SECRET_ACCESS_KEY": KEYS[SECOND]}
    done = aws(server.url, "list-flywheels", env=good)
    assert done.returncode == 0, done.stderr
    assert SECTIONS in [s["FlywheelArn"] for s in json.loads(done.stdout)["FlywheelSummaryList"]]
    wrong = aws(server.url, "list-flywheels",
                env={**good, "AWS_SECRET_ACCESS_KEY": KEYS[SECOND][:-1] + "X"})
    assert wrong.returncode == 255, wrong.stdout
    assert "(InvalidSignatureException) when calling the ListFlywheels operation" in \
        wrong.stderr
    assert wrong.stdout == ""


# refused callers ---------------------------------------------------------------------------


def test_a_wrong_secret_is_an_invalid_signature(server: ApiServer) -> None:
    comprehend = signed(server, FIRST, secret=KEYS[SECOND])  # a real secret, of another key
    status, code, message = failure(comprehend.list_flywheels)
    assert (status, code) == (400, "InvalidSignatureException")
    assert message.startswith(MISMATCH)


def test_an_unknown_access_key_is_an_unrecognized_client(server: ApiServer) -> None:
    comprehend = signed(server, "AKIANOTCONFIGURED999", secret=KEYS[FIRST])
    status, code, message = failure(comprehend.describe_flywheel, FlywheelArn=SECTIONS)
    assert (status, code) == (400, "UnrecognizedClientException")
    assert "security token included in the request is invalid" in message


def test_an_unsigned_request_is_missing_its_token(server: ApiServer) -> None:
    comprehend = server.client(signature_version=botocore.UNSIGNED)
    status, code, message = failure(comprehend.list_flywheels)
    assert (status, code) == (403, "MissingAuthenticationTokenException")
    assert message == "Missing Authentication Token"


# signed by hand: the clock, the body, the error header -------------------------------------


def test_a_request_signed_by_hand_now_is_served(server: ApiServer) -> None:
    """The control for the hand-signed cases below: the same path, untampered, is accepted."""
    body = b"{}"
    status, answer, error = send(server, body, sign_by_hand(server, "ListFlywheels", body))
    assert (status, error) == (200, "")
    assert SECTIONS in [s["FlywheelArn"] for s in answer["FlywheelSummaryList"]]


@pytest.mark.parametrize(("shift", "words"), [
    (timedelta(minutes=-10), "Signature expired: "),
    (timedelta(minutes=10), "Signature not yet current: "),
], ids=["ten-minutes-ago", "ten-minutes-ahead"])
def test_a_signature_outside_five_minutes_of_the_server_clock_is_refused(
        server: ApiServer, monkeypatch: pytest.MonkeyPatch, shift: timedelta,
        words: str) -> None:
    body = b"{}"
    at = datetime.now(UTC) + shift
    headers = sign_by_hand(server, "ListFlywheels", body, at=at, monkeypatch=monkeypatch)
    status, answer, error = send(server, body, headers)
    assert (status, answer["__type"]) == (400, "InvalidSignatureException")
    assert answer["Message"].startswith(words + headers["X-Amz-Date"])
    # The error header names the same error as the body (what botocore reads first).
    assert error == answer["__type"]


def test_a_body_changed_after_signing_is_refused_and_writes_nothing(server: ApiServer) -> None:
    signed_body = json.dumps(create_params("tampered-a")).encode()
    sent_body = json.dumps(create_params("tampered-b")).encode()  # the same length
    assert len(signed_body) == len(sent_body)
    headers = sign_by_hand(server, "CreateFlywheel", signed_body)
    before = commits(server.root)
    status, answer, error = send(server, sent_body, headers)
    assert (status, answer["__type"], error) == (400, "InvalidSignatureException",
                                                 "InvalidSignatureException")
    assert answer["Message"].startswith(MISMATCH)
    longer = json.dumps(create_params("tampered-longer")).encode()
    status, answer, _ = send(server, longer, headers)
    assert (status, answer["__type"]) == (400, "InvalidSignatureException")
    assert commits(server.root) == before
    for name in ("tampered-a", "tampered-b", "tampered-longer"):
        assert not (server.root / f"specs/{name}.yaml").exists()


# writes ------------------------------------------------------------------------------------


def test_a_signed_write_commits_and_the_same_write_unsigned_commits_nothing(
        server: ApiServer) -> None:
    comprehend = signed(server, SECOND)
    arn = comprehend.create_flywheel(**create_params("signed-1"))["FlywheelArn"]
    assert arn == f"{ARN}flywheel/signed-1"
    assert commits(server.root)[0] == "CreateFlywheel signed-1"
    assert (server.root / "specs/signed-1.yaml").is_file()
    comprehend.tag_resource(ResourceArn=arn, Tags=[{"Key": "team", "Value": "nlp"}])
    assert commits(server.root)[0].startswith("TagResource signed-1")

    before = commits(server.root)
    unsigned = server.client(signature_version=botocore.UNSIGNED)
    status, code, _ = failure(unsigned.create_flywheel, **create_params("unsigned-1"))
    assert (status, code) == (403, "MissingAuthenticationTokenException")
    status, code, _ = failure(unsigned.tag_resource, ResourceArn=arn,
                              Tags=[{"Key": "owner", "Value": "mallory"}])
    assert (status, code) == (403, "MissingAuthenticationTokenException")
    assert commits(server.root) == before
    assert not (server.root / "specs/unsigned-1.yaml").exists()
    assert comprehend.list_tags_for_resource(ResourceArn=arn)["Tags"] == [
        {"Key": "team", "Value": "nlp"}]


# start-up refusals -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bare_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("refusals")
    run_cli(base, "init", str(base / "repo"))
    return base / "repo"


def refused(root: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], int, float]:
    """``flywheel serve`` that must not start: its run, the port it was given, seconds taken."""
    port = free_port()
    started = time.monotonic()
    done = subprocess.run([FLYWHEEL, "-C", str(root), "serve", "--port", str(port),
                           "--log-format", "json", *args],
                          capture_output=True, text=True, timeout=30)
    return done, port, time.monotonic() - started


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def test_a_reachable_host_without_credentials_is_refused_at_start(bare_repo: Path) -> None:
    done, port, seconds = refused(bare_repo, "--host", "0.0.0.0", "--no-watch")
    assert done.returncode != 0
    assert seconds < 20
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "--credentials-file" in lines[0] and "0.0.0.0" in lines[0]
    assert '"serving"' not in done.stdout + done.stderr
    assert not listening(port)


@pytest.mark.parametrize(("content", "words"), [
    (None, "cannot read the credentials file"),
    ("aws_access_key_id = AKIA1\n", "before the first [profile] section"),
    ("[default]\naws_access_key_id = AKIA1\n", "no aws_secret_access_key"),
    ("[default]\nthis is not an ini line\n", "not a 'key = value' line"),
], ids=["missing", "no-section", "no-secret", "not-ini"])
def test_a_missing_or_malformed_credentials_file_is_refused_at_start(
        bare_repo: Path, tmp_path: Path, content: str | None, words: str) -> None:
    path = tmp_path / "credentials"
    if content is not None:
        path.write_text(content, "utf-8")
    done, port, _ = refused(bare_repo, "--no-watch", "--credentials-file", str(path))
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert str(path) in lines[0] and words in lines[0]
    assert not listening(port)
