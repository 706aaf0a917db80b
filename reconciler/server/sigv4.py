"""AWS Signature Version 4 verification for the Comprehend-compatible API.

The signature is recomputed with **botocore's own signer** (``SigV4Auth.canonical_request``,
``string_to_sign`` and ``signature``), never a hand-written HMAC chain: the canonical request has
one implementation, the very one the client (boto3, the aws CLI) used to sign, so URI and query
encoding, header trimming and the payload hash cannot drift apart between the two sides. Only the
headers the client named in ``SignedHeaders`` are handed to the signer, with their values exactly as
received; unsigned headers (``User-Agent``, ``amz-sdk-*``, ``Content-Length``) cannot change the
outcome. The payload hash is always taken over the raw body bytes: a signed
``X-Amz-Content-SHA256`` must equal it (unsigned payloads are refused).

The computed and the presented signatures are compared with :func:`hmac.compare_digest`, in
constant time, so the comparison leaks nothing about how many leading characters matched.

A request is accepted only within ``max_skew`` seconds (± five minutes, as AWS) of the server's
clock, judged on its signed ``X-Amz-Date``; outside it the error carries AWS's own wording. The
credential scope's date must be X-Amz-Date's date, its service the server's; any region is taken.

Errors are :class:`AuthError`\\ s whose ``code`` is the AWS exception name a face sends as
``__type``. Checks run in AWS's order: the header's shape, the key id, the scope, the time, the
signature. Presigned (query-string) authentication is not supported.

Credentials come from an AWS shared-credentials file (:func:`load_credentials`), read bounded.
"""

from __future__ import annotations

import configparser
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

# botocore ships no type information: its names are Any here. The second code keeps this line
# quiet once pyproject.toml ignores botocore's missing imports instead.
from botocore.auth import (
    SIGNED_HEADERS_BLACKLIST,
    SigV4Auth,
)
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from reconciler.errors import FlywheelError

#: A credentials file larger than this is refused unread.
MAX_CREDENTIALS_BYTES = 1 << 20
ALGORITHM = "AWS4-HMAC-SHA256"
#: X-Amz-Date's format (basic ISO 8601, UTC).
AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"

MISSING_TOKEN = "MissingAuthenticationTokenException"
INCOMPLETE = "IncompleteSignatureException"
UNRECOGNIZED = "UnrecognizedClientException"
INVALID = "InvalidSignatureException"

_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. "
    "Consult the service documentation for details."
)
_AMZ_DATE = re.compile(r"\d{8}T\d{6}Z")
_SCOPE_DATE = re.compile(r"\d{8}")
_SIGNATURE = re.compile(r"[0-9a-f]{64}")
_HEADER_NAME = re.compile(r"[a-z0-9!#$%&'*+.^_`|~-]+")
_PARAMETERS = ("Credential", "SignedHeaders", "Signature")
#: The section name configparser would treat as defaults for all others: one no file can use.
_NO_DEFAULT_SECTION = "\x00"


class AuthError(Exception):
    """An AWS-shaped authentication failure: ``code`` is the error name sent as __type."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class _Authorization:
    access_key: str
    scope_date: str
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str


@dataclass(frozen=True)
class Verifier:
    """Checks SigV4-signed requests against ``keys`` (access key id -> secret access key)."""

    keys: Mapping[str, str] = field(repr=False)
    service: str = "comprehend"
    #: Seconds a request's X-Amz-Date may lie before or after the server's clock.
    max_skew: float = 300.0

    def verify(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes, now: float
    ) -> str:
        """The access key id that signed this request, or :class:`AuthError`.

        ``url`` is the URL as the client addressed it, path and query exactly as on the wire
        (still percent-encoded), e.g. ``http://127.0.0.1:4599/``; ``headers`` any mapping, looked
        up case-insensitively; ``body`` the raw bytes received; ``now`` the server's clock (epoch
        seconds).
        """
        lowered = _lowered(headers)
        presigned = any(name == "X-Amz-Algorithm" for name, _ in parse_qsl(urlsplit(url).query))
        authorization = lowered.get("authorization")
        if authorization is None:
            if presigned:
                raise AuthError(INCOMPLETE, "Query-string (presigned URL) authentication is not "
                                "supported: sign with the Authorization header.")
            raise AuthError(MISSING_TOKEN, "Missing Authentication Token")
        if presigned:
            raise AuthError(INCOMPLETE, "Only one authentication method is allowed: an "
                            "Authorization header and X-Amz-Algorithm in the query string.")
        auth = _parse_authorization(authorization)
        amz_date, signed_at = _amz_date(lowered)
        _check_signed_headers(auth.signed_headers, lowered)

        secret = self.keys.get(auth.access_key)
        if secret is None:
            raise AuthError(UNRECOGNIZED, "The security token included in the request is invalid.")
        if auth.service != self.service:
            raise AuthError(INVALID, f"Credential should be scoped to correct service: "
                            f"'{self.service}', not '{auth.service}'.")
        if auth.scope_date != amz_date[:8]:
            raise AuthError(INVALID, f"Date in Credential scope does not match YYYYMMDD from "
                            f"ISO-8601 version of date from HTTP: '{auth.scope_date}' != "
                            f"'{amz_date[:8]}', from '{amz_date}'.")
        self._check_time(amz_date, signed_at, now)
        _check_content_sha256(auth.signed_headers, lowered, body)

        signature = _botocore_signature(auth, secret, method, url, lowered, body, amz_date)
        if not hmac.compare_digest(signature.encode("ascii"), auth.signature.encode("ascii")):
            raise AuthError(INVALID, _MISMATCH)
        return auth.access_key

    def _check_time(self, amz_date: str, signed_at: float, now: float) -> None:
        minutes = f"{self.max_skew / 60:g} min."
        if signed_at < now - self.max_skew:
            raise AuthError(INVALID, f"Signature expired: {amz_date} is now earlier than "
                            f"{_format(now - self.max_skew)} ({_format(now)} - {minutes})")
        if signed_at > now + self.max_skew:
            raise AuthError(INVALID, f"Signature not yet current: {amz_date} is still later than "
                            f"{_format(now + self.max_skew)} ({_format(now)} + {minutes})")


def _lowered(headers: Mapping[str, str]) -> dict[str, str]:
    """The headers by lower-case name; one name twice with different values is refused."""
    lowered: dict[str, str] = {}
    for name, value in headers.items():
        key = name.lower()
        if key in lowered and lowered[key] != value:
            raise AuthError(INCOMPLETE, f"The header '{key}' is given twice with different values.")
        lowered[key] = value
    return lowered


def _parse_authorization(value: str) -> _Authorization:
    """``AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`` or IncompleteSignature."""
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise AuthError(INCOMPLETE, f"Unsupported Authorization algorithm '{algorithm}': only "
                        f"{ALGORITHM} is accepted.")
    parameters: dict[str, str] = {}
    for part in rest.split(","):
        name, equals, given = part.strip().partition("=")
        if not part.strip():
            continue
        if not equals or name not in _PARAMETERS:
            raise AuthError(INCOMPLETE, f"Authorization header: '{part.strip()}' is not one of "
                            f"Credential=, SignedHeaders=, Signature=.")
        if name in parameters:
            raise AuthError(INCOMPLETE, f"Authorization header: '{name}' is given twice.")
        parameters[name] = given.strip()
    missing = [name for name in _PARAMETERS if not parameters.get(name)]
    if missing:
        raise AuthError(INCOMPLETE, " ".join(
            f"Authorization header requires '{name}' parameter." for name in missing))

    scope = parameters["Credential"].split("/")
    if (len(scope) != 5 or not all(scope) or scope[4] != "aws4_request"
            or not _SCOPE_DATE.fullmatch(scope[1])):
        raise AuthError(INCOMPLETE, f"Credential '{parameters['Credential']}' is not "
                        f"ACCESS_KEY_ID/YYYYMMDD/REGION/SERVICE/aws4_request.")
    signed = tuple(parameters["SignedHeaders"].split(";"))
    bad = [name for name in signed if not _HEADER_NAME.fullmatch(name)]
    if bad:
        raise AuthError(INCOMPLETE, f"SignedHeaders '{parameters['SignedHeaders']}' holds "
                        f"'{bad[0]}', not a lower-case header name.")
    if len(set(signed)) != len(signed):
        raise AuthError(INCOMPLETE, f"SignedHeaders '{parameters['SignedHeaders']}' names a "
                        f"header twice.")
    if not _SIGNATURE.fullmatch(parameters["Signature"]):
        raise AuthError(INCOMPLETE, "Signature must be 64 lower-case hexadecimal digits.")
    return _Authorization(access_key=scope[0], scope_date=scope[1], region=scope[2],
                          service=scope[3], signed_headers=signed,
                          signature=parameters["Signature"])


def _amz_date(headers: Mapping[str, str]) -> tuple[str, float]:
    """X-Amz-Date as given, and as epoch seconds; missing or malformed is IncompleteSignature."""
    given = headers.get("x-amz-date")
    if given is None:
        raise AuthError(INCOMPLETE, "The request must carry an X-Amz-Date header "
                        "(YYYYMMDDTHHMMSSZ).")
    try:
        if not _AMZ_DATE.fullmatch(given):
            raise ValueError(given)
        signed_at = datetime.strptime(given, AMZ_DATE_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise AuthError(INCOMPLETE, f"X-Amz-Date '{given}' is not a date of the form "
                        f"YYYYMMDDTHHMMSSZ.") from None
    return given, signed_at.timestamp()


def _check_signed_headers(signed: tuple[str, ...], headers: Mapping[str, str]) -> None:
    for required, shown in (("host", "Host"), ("x-amz-date", "X-Amz-Date")):
        if required not in signed:
            raise AuthError(INCOMPLETE, f"'{shown}' must be a 'SignedHeader' in the AWS "
                            f"Authorization.")
    absent = [name for name in signed if name not in headers]
    if absent:
        raise AuthError(INCOMPLETE, f"SignedHeaders names '{absent[0]}', which the request "
                        f"does not carry.")
    # botocore never signs these (hop-by-hop and tracing headers): a signature over one of them
    # could not be reproduced, so it is refused with a reason rather than as a plain mismatch.
    unsignable = [name for name in signed if name in SIGNED_HEADERS_BLACKLIST]
    if unsignable:
        raise AuthError(INCOMPLETE, f"SignedHeaders names '{unsignable[0]}', a header this "
                        f"server does not verify; leave it unsigned.")


def _check_content_sha256(signed: tuple[str, ...], headers: Mapping[str, str],
                          body: bytes) -> None:
    """A signed X-Amz-Content-SHA256 stands for the body in the signature: it must be the body's."""
    if "x-amz-content-sha256" not in signed:
        return
    if headers["x-amz-content-sha256"] != hashlib.sha256(body).hexdigest():
        raise AuthError(INVALID, "The X-Amz-Content-SHA256 header is not the SHA-256 of the "
                        "request body (unsigned payloads are not accepted).")


def _botocore_signature(auth: _Authorization, secret: str, method: str, url: str,
                        headers: Mapping[str, str], body: bytes, amz_date: str) -> str:
    """The signature botocore computes for this request, over its signed headers only."""
    request = AWSRequest(method=method, url=url, data=body,
                         headers={name: headers[name] for name in auth.signed_headers})
    request.context["timestamp"] = amz_date
    signer = SigV4Auth(Credentials(auth.access_key, secret), auth.service, auth.region)
    # The payload hash is over request.body, the raw bytes: botocore signs payloads whenever the
    # URL is plain http, and for https unless the context's payload_signing_enabled says not.
    canonical = signer.canonical_request(request)
    string_to_sign = signer.string_to_sign(request, canonical)
    return str(signer.signature(string_to_sign, request))


def _format(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime(AMZ_DATE_FORMAT)


def load_credentials(path: Path) -> dict[str, str]:
    """Access key id -> secret from an AWS shared-credentials file (every section's pair).

    Other keys (aws_session_token, region, …) are ignored. A file over
    :data:`MAX_CREDENTIALS_BYTES`, an unreadable or malformed one, one without sections, a section
    without both keys, or one key id with two different secrets is a :class:`FlywheelError`.
    """
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_CREDENTIALS_BYTES + 1)
    except OSError as exc:
        raise FlywheelError(f"cannot read the credentials file: {exc.strerror or exc}",
                            file=path) from exc
    if len(raw) > MAX_CREDENTIALS_BYTES:
        raise FlywheelError(f"the credentials file is larger than {MAX_CREDENTIALS_BYTES} bytes "
                            f"(1 MiB): refused unread", file=path)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FlywheelError(f"the credentials file is not UTF-8 (byte {exc.start})",
                            file=path) from exc
    parser = configparser.ConfigParser(interpolation=None, default_section=_NO_DEFAULT_SECTION)
    try:
        parser.read_string(text, source=str(path))
    except configparser.Error as exc:
        raise _ini_error(exc, path, text) from exc
    if not parser.sections():
        raise FlywheelError("the credentials file has no [profile] section", file=path)

    keys: dict[str, str] = {}
    owners: dict[str, str] = {}
    for section in parser.sections():
        access_key = parser.get(section, "aws_access_key_id", fallback="").strip()
        secret = parser.get(section, "aws_secret_access_key", fallback="").strip()
        absent = [name for name, value in (("aws_access_key_id", access_key),
                                           ("aws_secret_access_key", secret)) if not value]
        if absent:
            raise FlywheelError(f"section [{section}] has no {' and no '.join(absent)}",
                                file=path, line=_section_line(text, section))
        if access_key in keys and keys[access_key] != secret:
            raise FlywheelError(f"access key id {access_key} has different secrets in "
                                f"[{owners[access_key]}] and [{section}]",
                                file=path, line=_section_line(text, section))
        keys[access_key] = secret
        owners.setdefault(access_key, section)
    return keys


def _ini_error(exc: configparser.Error, path: Path, text: str) -> FlywheelError:
    """configparser's (multi-line) complaint as one line with the line number."""
    if isinstance(exc, configparser.MissingSectionHeaderError):
        return FlywheelError("a key before the first [profile] section header",
                             file=path, line=exc.lineno)
    if isinstance(exc, configparser.ParsingError):
        line = exc.errors[0][0]
        content = text.splitlines()[line - 1] if 0 < line <= len(text.splitlines()) else ""
        more = f" (and {len(exc.errors) - 1} more lines)" if len(exc.errors) > 1 else ""
        return FlywheelError(f"not a 'key = value' line: {content.strip()!r}{more}",
                             file=path, line=line)
    if isinstance(exc, configparser.DuplicateSectionError):
        return FlywheelError(f"section [{exc.section}] appears twice", file=path, line=exc.lineno)
    if isinstance(exc, configparser.DuplicateOptionError):
        return FlywheelError(f"{exc.option} is given twice in section [{exc.section}]",
                             file=path, line=exc.lineno)
    return FlywheelError(f"not a credentials file: {str(exc).splitlines()[0]}", file=path)


def _section_line(text: str, section: str) -> int | None:
    header = f"[{section}]"
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip() == header:
            return number
    return None
