"""SigV4 verification against requests signed by real botocore (and a real boto3 client)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import boto3
import botocore.auth
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSPreparedRequest, AWSRequest, AWSResponse
from botocore.credentials import Credentials

from reconciler.errors import FlywheelError
from reconciler.server.sigv4 import AuthError, Verifier, load_credentials

AKID, SECRET = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
URL = "http://127.0.0.1:4599/"
#: The signing clock of the table's requests (botocore's clock is naive UTC).
SIGNED_AT = datetime(2026, 12, 1, 12, 0, 0)
NOW = SIGNED_AT.replace(tzinfo=UTC).timestamp()
MISMATCH = ("The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method. "
            "Consult the service documentation for details.")
VERIFIER = Verifier({AKID: SECRET, "AKIDOTHER": "other-secret"})


@dataclass(frozen=True)
class Req:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes

    def header(self, name: str, value: str) -> Req:
        return replace(self, headers={**self.headers, name: value})

    def without(self, name: str) -> Req:
        return replace(self, headers={k: v for k, v in self.headers.items() if k != name})

    def authorization(self, old: str, new: str) -> Req:
        value = self.headers["Authorization"]
        assert old in value, (old, value)
        return self.header("Authorization", value.replace(old, new))


def sign(url: str = URL, body: bytes = b"{}", *, secret: str = SECRET, akid: str = AKID,
         token: str | None = None, service: str = "comprehend",
         extra: dict[str, str] | None = None) -> Req:
    """Signed as boto3 signs a Comprehend call; Host added as the HTTP client sends it."""
    headers = {"Content-Type": "application/x-amz-json-1.1",
               "X-Amz-Target": "Comprehend_20171127.ListFlywheels", **(extra or {})}
    request = AWSRequest(method="POST", url=url, data=body, headers=headers)
    SigV4Auth(Credentials(akid, secret, token), service, "us-east-1").add_auth(request)
    sent = {name: str(value) for name, value in request.headers.items()}
    sent["Host"] = "127.0.0.1:4599"
    return Req("POST", url, sent, body)


@pytest.fixture
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore's signer reads the time through this one function: pin it to SIGNED_AT."""
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *_a, **_k: SIGNED_AT)


def verify(req: Req, now: float = NOW, verifier: Verifier = VERIFIER) -> str:
    return verifier.verify(req.method, req.url, req.headers, req.body, now)


def test_the_fixed_clock_is_what_botocore_signed_with(fixed_clock: None) -> None:
    assert sign().headers["X-Amz-Date"] == "20261201T120000Z"


VALID: list[tuple[str, Callable[[], Req], float]] = [
    ("valid", sign, 0),
    ("valid-query-string", lambda: sign(URL + "?b=2&a=1&c=x%20y"), 0),
    ("valid-session-token", lambda: sign(token="FwoGZXIvYXdzE//token"), 0),
    ("valid-other-key", lambda: sign(akid="AKIDOTHER", secret="other-secret"), 0),
    ("valid-empty-body", lambda: sign(body=b""), 0),
    ("extra-unsigned-header", lambda: sign().header("X-Unsigned", "anything")
     .header("User-Agent", "changed/1.0"), 0),
    ("lower-case-header-names", lambda: Req(
        "POST", URL, {k.lower(): v for k, v in sign().headers.items()}, b"{}"), 0),
    ("no-space-after-commas", lambda: sign().authorization(", ", ","), 0),
    ("several-spaces-after-commas", lambda: sign().authorization(", ", ",   "), 0),
    ("signed-content-sha256", lambda: sign(
        extra={"X-Amz-Content-SHA256": hashlib.sha256(b"{}").hexdigest()}), 0),
    ("unsigned-content-sha256-ignored", lambda: sign().header("X-Amz-Content-SHA256", "junk"), 0),
    ("299-s-old", sign, 299),
    ("299-s-ahead", sign, -299),
]


@pytest.mark.parametrize(("build", "offset"), [(b, o) for _, b, o in VALID],
                         ids=[i for i, _, _ in VALID])
def test_valid_requests_return_the_access_key(
        fixed_clock: None, build: Callable[[], Req], offset: float) -> None:
    req = build()
    authorization = {k.lower(): v for k, v in req.headers.items()}["authorization"]
    expected = authorization.split("Credential=")[1].split("/")[0]
    assert verify(req, NOW + offset) == expected


INCOMPLETE = "IncompleteSignatureException"
INVALID = "InvalidSignatureException"
INVALID_CASES: list[tuple[str, Callable[[], Req], float, str, str]] = [
    ("tampered-body", lambda: replace(sign(), body=b'{"x": 1}'), 0, INVALID, MISMATCH),
    ("tampered-signed-header", lambda: sign().header(
        "X-Amz-Target", "Comprehend_20171127.DeleteFlywheel"), 0, INVALID, MISMATCH),
    ("tampered-host", lambda: sign().header("Host", "127.0.0.1:4600"), 0, INVALID, MISMATCH),
    ("tampered-query", lambda: replace(sign(URL + "?a=1"), url=URL + "?a=2"), 0, INVALID,
     MISMATCH),
    ("query-added", lambda: replace(sign(), url=URL + "?a=1"), 0, INVALID, MISMATCH),
    ("tampered-path", lambda: replace(sign(), url=URL + "other"), 0, INVALID, MISMATCH),
    ("tampered-method", lambda: replace(sign(), method="PUT"), 0, INVALID, MISMATCH),
    ("tampered-session-token", lambda: sign(token="one").header("X-Amz-Security-Token", "two"),
     0, INVALID, MISMATCH),
    ("wrong-secret", lambda: sign(secret="not-the-secret"), 0, INVALID, MISMATCH),
    ("other-keys-secret", lambda: sign(secret="other-secret"), 0, INVALID, MISMATCH),
    ("unknown-key", lambda: sign(akid="AKIDUNKNOWN"), 0, "UnrecognizedClientException",
     "The security token included in the request is invalid."),
    ("missing-authorization", lambda: sign().without("Authorization"), 0,
     "MissingAuthenticationTokenException", "Missing Authentication Token"),
    ("presigned-query", lambda: replace(sign().without("Authorization"),
                                        url=URL + "?X-Amz-Algorithm=AWS4-HMAC-SHA256"),
     0, INCOMPLETE, "presigned URL"),
    ("malformed-algorithm", lambda: sign().authorization("AWS4-HMAC-SHA256", "AWS4-HMAC-SHA1"),
     0, INCOMPLETE, "Unsupported Authorization algorithm 'AWS4-HMAC-SHA1'"),
    ("malformed-bare-token", lambda: sign().header("Authorization", "Bearer abc"),
     0, INCOMPLETE, "Unsupported Authorization algorithm 'Bearer'"),
    ("malformed-only-algorithm", lambda: sign().header("Authorization", "AWS4-HMAC-SHA256"),
     0, INCOMPLETE, "requires 'Credential' parameter. Authorization header requires "
     "'SignedHeaders' parameter. Authorization header requires 'Signature' parameter."),
    ("malformed-no-signature", lambda: sign().header(
        "Authorization", sign().headers["Authorization"].split(", Signature=")[0]),
     0, INCOMPLETE, "Authorization header requires 'Signature' parameter."),
    ("malformed-no-signed-headers", lambda: sign().authorization("SignedHeaders=", "Signed="),
     0, INCOMPLETE, "'Signed=content-type;host;x-amz-date;x-amz-target' is not one of"),
    ("malformed-credential-parts", lambda: sign().authorization("/us-east-1", ""),
     0, INCOMPLETE, "is not ACCESS_KEY_ID/YYYYMMDD/REGION/SERVICE/aws4_request"),
    ("malformed-credential-terminator", lambda: sign().authorization("aws4_request", "aws5"),
     0, INCOMPLETE, "is not ACCESS_KEY_ID/YYYYMMDD/REGION/SERVICE/aws4_request"),
    ("malformed-credential-date", lambda: sign().authorization("/20261201/", "/2026-12-1/"),
     0, INCOMPLETE, "is not ACCESS_KEY_ID/YYYYMMDD/REGION/SERVICE/aws4_request"),
    ("malformed-short-signature", lambda: sign().header(
        "Authorization", sign().headers["Authorization"][:-1]),
     0, INCOMPLETE, "Signature must be 64 lower-case hexadecimal digits."),
    ("malformed-upper-case-signature", lambda: sign().header(
        "Authorization", sign().headers["Authorization"].upper().replace(
            "AWS4-HMAC-SHA256 CREDENTIAL", "AWS4-HMAC-SHA256 Credential")),
     0, INCOMPLETE, "is not one of"),
    ("malformed-parameter-twice", lambda: sign().authorization(", Signature=", ", Signature=a, "
                                                               "Signature="),
     0, INCOMPLETE, "'Signature' is given twice"),
    ("missing-x-amz-date", lambda: sign().without("X-Amz-Date"), 0, INCOMPLETE,
     "must carry an X-Amz-Date header"),
    ("unparseable-x-amz-date", lambda: sign().header("X-Amz-Date", "2026-12-01T12:00:00Z"),
     0, INCOMPLETE, "X-Amz-Date '2026-12-01T12:00:00Z' is not a date of the form"),
    ("impossible-x-amz-date", lambda: sign().header("X-Amz-Date", "20261301T120000Z"),
     0, INCOMPLETE, "X-Amz-Date '20261301T120000Z' is not a date of the form"),
    ("expired-400-s", sign, 400, INVALID,
     "Signature expired: 20261201T120000Z is now earlier than 20261201T120140Z "
     "(20261201T120640Z - 5 min.)"),
    ("expired-aws-example", sign, 661, INVALID,
     "Signature expired: 20261201T120000Z is now earlier than 20261201T120601Z "
     "(20261201T121101Z - 5 min.)"),
    ("not-yet-current-400-s", sign, -400, INVALID,
     "Signature not yet current: 20261201T120000Z is still later than 20261201T115820Z "
     "(20261201T115320Z + 5 min.)"),
    ("wrong-service-in-scope", lambda: sign(service="translate"), 0, INVALID,
     "Credential should be scoped to correct service: 'comprehend', not 'translate'."),
    ("scope-date-not-x-amz-date", lambda: sign().authorization("/20261201/", "/20261130/"),
     0, INVALID, "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
     "from HTTP: '20261130' != '20261201', from '20261201T120000Z'."),
    ("host-not-signed", lambda: sign().authorization(";host;", ";"), 0, INCOMPLETE,
     "'Host' must be a 'SignedHeader' in the AWS Authorization."),
    ("x-amz-date-not-signed", lambda: sign().authorization(";x-amz-date;", ";"), 0, INCOMPLETE,
     "'X-Amz-Date' must be a 'SignedHeader' in the AWS Authorization."),
    ("signed-header-absent", lambda: sign().without("X-Amz-Target"), 0, INCOMPLETE,
     "SignedHeaders names 'x-amz-target', which the request does not carry."),
    ("signed-user-agent", lambda: sign().header("User-Agent", "x").authorization(
        "x-amz-target,", "x-amz-target;user-agent,"), 0, INCOMPLETE,
     "SignedHeaders names 'user-agent', a header this server does not verify"),
    ("signed-headers-not-names", lambda: sign().authorization(";host;", ";Host;"), 0, INCOMPLETE,
     "holds 'Host', not a lower-case header name"),
    ("header-twice-differently", lambda: sign().header("host", "evil.example"), 0, INCOMPLETE,
     "The header 'host' is given twice with different values."),
    ("signed-content-sha256-not-the-body", lambda: sign(
        extra={"X-Amz-Content-SHA256": hashlib.sha256(b"other").hexdigest()}), 0, INVALID,
     "The X-Amz-Content-SHA256 header is not the SHA-256 of the request body"),
    ("signed-unsigned-payload", lambda: sign(extra={"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"}),
     0, INVALID, "unsigned payloads are not accepted"),
]


@pytest.mark.parametrize(("build", "offset", "code", "message"),
                         [case[1:] for case in INVALID_CASES], ids=[c[0] for c in INVALID_CASES])
def test_bad_requests_are_refused_as_aws_would(
        fixed_clock: None, build: Callable[[], Req], offset: float, code: str,
        message: str) -> None:
    with pytest.raises(AuthError) as caught:
        verify(build(), NOW + offset)
    assert (caught.value.code, message in caught.value.message) == (code, True), \
        caught.value.message
    assert caught.value.message.strip() and "\n" not in caught.value.message


def test_the_window_follows_max_skew(fixed_clock: None) -> None:
    narrow = Verifier({AKID: SECRET}, max_skew=60)
    assert verify(sign(), NOW + 59, narrow) == AKID
    with pytest.raises(AuthError, match=r"\(20261201T120101Z - 1 min\.\)$"):
        verify(sign(), NOW + 61, narrow)


def test_a_verifier_for_another_service_takes_its_own_scope(fixed_clock: None) -> None:
    assert verify(sign(service="translate"), NOW, Verifier({AKID: SECRET}, "translate")) == AKID


def test_the_verifier_does_not_show_its_secrets() -> None:
    assert SECRET not in repr(VERIFIER)
    assert "comprehend" in repr(VERIFIER)


def capture_boto3_request(**client_args: str) -> AWSPreparedRequest:
    """A real boto3 ListFlywheels call, stopped just before it would go on the wire."""
    captured: list[AWSPreparedRequest] = []

    class Raw:
        def stream(self, **_kwargs: object) -> list[bytes]:
            return [b'{"FlywheelSummaryList": []}']

    def before_send(request: AWSPreparedRequest, **_kwargs: object) -> AWSResponse:
        captured.append(request)
        return AWSResponse(request.url, 200, {"Content-Type": "application/x-amz-json-1.1"}, Raw())

    client = boto3.client("comprehend", endpoint_url="http://127.0.0.1:4599",
                          region_name="us-east-1", aws_access_key_id=AKID,
                          aws_secret_access_key=SECRET, **client_args)
    client.meta.events.register("before-send", before_send)
    assert client.list_flywheels(MaxResults=5)["FlywheelSummaryList"] == []
    assert len(captured) == 1
    return captured[0]


def as_received(request: AWSPreparedRequest) -> Req:
    """The request as a server reads it: str headers, plus the Host urllib3 adds."""
    headers = {name: value.decode() if isinstance(value, bytes) else value
               for name, value in request.headers.items()}
    headers["Host"] = "127.0.0.1:4599"
    body = request.body if isinstance(request.body, bytes) else request.body.encode()
    return Req(request.method, request.url, headers, body)


@pytest.mark.parametrize("token", [None, "FwoGZXIvYXdzE//session"], ids=["keys", "session"])
def test_a_real_boto3_request_verifies(
        token: str | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    req = as_received(capture_boto3_request(**({"aws_session_token": token} if token else {})))
    assert {"user-agent", "amz-sdk-invocation-id", "amz-sdk-request"} <= {
        name.lower() for name in req.headers}
    assert ("x-amz-security-token" in req.headers["Authorization"]) == (token is not None)
    assert verify(req, time.time()) == AKID
    with pytest.raises(AuthError) as caught:
        verify(replace(req, body=req.body.replace(b"5", b"6")), time.time())
    assert (caught.value.code, caught.value.message) == (INVALID, MISMATCH)


# --- load_credentials ------------------------------------------------------------------------


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "credentials"
    path.write_text(text, encoding="utf-8")
    return path


def test_credentials_of_every_section(tmp_path: Path) -> None:
    path = write(tmp_path, "[default]\naws_access_key_id = AKIDONE\n"
                 "aws_secret_access_key = s3cr%t/one\naws_session_token = ignored\n\n"
                 "# a comment\n[profile ci]\nregion = us-east-1\nAWS_ACCESS_KEY_ID=AKIDTWO\n"
                 "aws_secret_access_key=two\n[again]\naws_access_key_id = AKIDONE\n"
                 "aws_secret_access_key = s3cr%t/one\n")
    assert load_credentials(path) == {"AKIDONE": "s3cr%t/one", "AKIDTWO": "two"}


def test_a_default_section_is_a_section_like_any_other(tmp_path: Path) -> None:
    path = write(tmp_path, "[DEFAULT]\naws_access_key_id = A\naws_secret_access_key = a\n"
                 "[other]\naws_access_key_id = B\n")
    with pytest.raises(FlywheelError, match=r":4: section \[other\] has no aws_secret_access_key$"):
        load_credentials(path)


CREDENTIAL_ERRORS = [
    ("missing-secret", "[a]\naws_access_key_id = A\naws_secret_access_key = a\n\n[b]\n"
     "aws_access_key_id = B\n", ":5: section [b] has no aws_secret_access_key"),
    ("missing-both", "[a]\nregion = x\n",
     ":1: section [a] has no aws_access_key_id and no aws_secret_access_key"),
    ("empty-value", "[a]\naws_access_key_id =\naws_secret_access_key = a\n",
     ":1: section [a] has no aws_access_key_id"),
    ("empty-file", "", ": the credentials file has no [profile] section"),
    ("only-comments", "# nothing\n\n", ": the credentials file has no [profile] section"),
    ("conflicting-duplicate-key", "[a]\naws_access_key_id = A\naws_secret_access_key = a\n"
     "[b]\naws_access_key_id = A\naws_secret_access_key = b\n",
     ":4: access key id A has different secrets in [a] and [b]"),
    ("no-section-header", "aws_access_key_id = A\n",
     ":1: a key before the first [profile] section header"),
    ("not-key-value", "[a]\naws_access_key_id = A\njust words\n",
     ":3: not a 'key = value' line: 'just words'"),
    ("section-twice", "[a]\naws_access_key_id = A\n[a]\n", ":3: section [a] appears twice"),
    ("key-twice", "[a]\naws_access_key_id = A\naws_access_key_id = B\n",
     ":3: aws_access_key_id is given twice in section [a]"),
]


@pytest.mark.parametrize(("text", "message"), [c[1:] for c in CREDENTIAL_ERRORS],
                         ids=[c[0] for c in CREDENTIAL_ERRORS])
def test_bad_credential_files(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(FlywheelError) as caught:
        load_credentials(path)
    assert str(caught.value) == f"{path}{message}"


def test_a_credentials_file_over_1_mib_is_refused(tmp_path: Path) -> None:
    fine = "[a]\naws_access_key_id = A\naws_secret_access_key = a\n"
    path = write(tmp_path, fine + "#" * ((1 << 20) - len(fine) - 1) + "\n")
    assert load_credentials(path) == {"A": "a"}
    path.write_text(fine + "#" * ((1 << 20) - len(fine)) + "\n", encoding="utf-8")
    with pytest.raises(FlywheelError, match="larger than 1048576 bytes"):
        load_credentials(path)


def test_an_unreadable_credentials_file(tmp_path: Path) -> None:
    with pytest.raises(FlywheelError, match=r"/missing: cannot read the credentials file: No such"):
        load_credentials(tmp_path / "missing")
    (tmp_path / "binary").write_bytes(b"[a]\naws_access_key_id = \xff\n")
    with pytest.raises(FlywheelError, match=r"/binary: the credentials file is not UTF-8"):
        load_credentials(tmp_path / "binary")
