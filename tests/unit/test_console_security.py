"""The console's guards without a server: signed session cookies (round trip, tampering,
expiry on a fake clock), sign-in, per-session CSRF tokens, and the Host and Origin checks."""

from __future__ import annotations

import pytest

from reconciler.server.console import security
from reconciler.server.console.security import SESSION_SECONDS, Guard, Session

KEYS = {"AKIDCONSOLE": "s3cret", "AKIDOTHER": "other-secret"}


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def guard(clock: Clock) -> Guard:
    return Guard(KEYS, clock=clock, secret=b"k" * 32)


# sessions ----------------------------------------------------------------------------------


def test_a_cookie_round_trips(guard: Guard, clock: Clock) -> None:
    session = guard.new_session("AKIDCONSOLE")
    assert session.expires == int(clock.now) + SESSION_SECONDS
    assert guard.session_of(guard.cookie_value(session)) == session
    anonymous = guard.new_session()
    assert guard.session_of(guard.cookie_value(anonymous)) == anonymous
    assert not anonymous.signed_in and session.signed_in


def test_sessions_are_distinct(guard: Guard) -> None:
    assert len({guard.new_session().id for _ in range(50)}) == 50


def _tampered(cookie: str) -> list[str]:
    session_id, user, expires, mac = cookie.split(".")
    flipped = ("0" if mac[0] != "0" else "1") + mac[1:]
    return [
        f"{session_id}.{user}.{expires}.{flipped}",              # the signature changed
        f"{session_id}x.{user}.{expires}.{mac}",                 # another session id
        f"{session_id}.AKIDOTHER.{expires}.{mac}",               # another user
        f"{session_id}.{user}.{int(expires) + 10**6}.{mac}",     # a later expiry
        f"{session_id}.{user}.{expires}",                        # no signature
        f"{session_id}.{user}.{expires}.{mac}.extra",            # five parts
        f"{session_id}.{user}.soon.{mac}",                       # not a number
        "", "garbage", "a.b.c.d", cookie + "0", "x" * 600,
    ]


def test_a_tampered_cookie_is_no_session(guard: Guard) -> None:
    cookie = guard.cookie_value(guard.new_session("AKIDCONSOLE"))
    for bad in _tampered(cookie):
        assert guard.session_of(bad) is None, bad
    assert guard.session_of(None) is None


def test_another_servers_cookie_is_no_session(clock: Clock) -> None:
    one = Guard(KEYS, clock=clock, secret=b"a" * 32)
    other = Guard(KEYS, clock=clock, secret=b"b" * 32)
    assert other.session_of(one.cookie_value(one.new_session("AKIDCONSOLE"))) is None


def test_an_expired_cookie_is_no_session(guard: Guard, clock: Clock) -> None:
    cookie = guard.cookie_value(guard.new_session("AKIDCONSOLE"))
    clock.now += SESSION_SECONDS - 1
    assert guard.session_of(cookie) is not None
    clock.now += 2
    assert guard.session_of(cookie) is None


def test_a_key_removed_since_ends_its_sessions(clock: Clock) -> None:
    before = Guard(KEYS, clock=clock, secret=b"s" * 32)
    after = Guard({"AKIDOTHER": "other-secret"}, clock=clock, secret=b"s" * 32)
    cookie = before.cookie_value(before.new_session("AKIDCONSOLE"))
    assert before.session_of(cookie) is not None
    assert after.session_of(cookie) is None


def test_a_non_ascii_cookie_is_no_session(guard: Guard) -> None:
    assert guard.session_of("abc.-.9999999999.\u00e9") is None


# sign-in -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("key", "secret", "user"), [
    ("AKIDCONSOLE", "s3cret", "AKIDCONSOLE"),
    ("AKIDOTHER", "other-secret", "AKIDOTHER"),
    ("AKIDCONSOLE", "other-secret", None),   # another key's secret
    ("AKIDCONSOLE", "s3cre", None),          # a prefix
    ("AKIDCONSOLE", "s3cret ", None),
    ("AKIDCONSOLE", "", None),
    ("AKIDUNKNOWN", "s3cret", None),
    ("", "", None),
    ("AKIDCONSOLE", "s3cr\u00e9t", None),    # non-ASCII: compared as bytes
])
def test_sign_in(guard: Guard, key: str, secret: str, user: str | None) -> None:
    session = guard.sign_in(key, secret)
    if user is None:
        assert session is None
    else:
        assert session is not None and session.user == user and session.signed_in
        assert guard.allowed(session)


def test_without_credentials_everyone_is_allowed(clock: Clock) -> None:
    open_guard = Guard(None, clock=clock)
    assert not open_guard.sign_in_required
    assert open_guard.allowed(open_guard.new_session())
    assert open_guard.allowed(None)
    signed = open_guard.sign_in("anything", "at all")
    assert signed is not None and not signed.signed_in


def test_with_credentials_an_anonymous_session_is_not_allowed(guard: Guard) -> None:
    assert guard.sign_in_required
    assert not guard.allowed(guard.new_session())
    assert not guard.allowed(None)


# forms -------------------------------------------------------------------------------------


def test_a_csrf_token_belongs_to_its_session(guard: Guard) -> None:
    one, two = guard.new_session(), guard.new_session()
    token = guard.csrf_token(one)
    assert token == guard.csrf_token(one) and len(token) == 40
    assert guard.csrf_token(two) != token
    assert guard.csrf_ok(one, token)
    assert not guard.csrf_ok(two, token)
    # the same session id after sign-in keeps its token only if the id is kept
    assert guard.csrf_ok(Session(one.id, "AKIDCONSOLE", one.expires), token)
    for bad in (None, "", token[:-1], token + "0", token.upper(), "0" * 40):
        assert not guard.csrf_ok(one, bad), bad
    assert not guard.csrf_ok(None, token)


def test_another_servers_token_is_refused(clock: Clock) -> None:
    one = Guard(None, clock=clock, secret=b"a" * 32)
    other = Guard(None, clock=clock, secret=b"b" * 32)
    session = one.new_session()
    assert not other.csrf_ok(session, one.csrf_token(session))


def test_a_non_ascii_token_is_refused(guard: Guard) -> None:
    assert not guard.csrf_ok(guard.new_session(), "\u00e9" * 40)


# Host and Origin ---------------------------------------------------------------------------


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1:4599", True),
    ("127.0.0.1", True),
    ("localhost", True),
    ("localhost:8080", True),
    ("LOCALHOST:8080", True),
    ("[::1]:80", True),
    ("[::1]", True),
    ("127.5.5.5", True),
    ("evil.example", False),
    ("evil.example:4599", False),
    ("localhost.evil.example", False),
    ("127.0.0.1.nip.io", False),
    ("10.0.0.1", False),
    ("0.0.0.0:4599", False),
    ("192.168.1.10:4599", False),
    ("", False),
    (None, False),
])
def test_loopback_host(host: str | None, loopback: bool) -> None:
    assert security.loopback_host(host) is loopback


@pytest.mark.parametrize(("origin", "host", "same"), [
    (None, "127.0.0.1:4599", True),                       # no Origin: not a cross-site form
    (None, None, True),
    ("http://127.0.0.1:4599", "127.0.0.1:4599", True),
    ("https://127.0.0.1:4599", "127.0.0.1:4599", True),
    ("http://localhost:4599", "localhost:4599", True),
    ("http://localhost:4599", "127.0.0.1:4599", False),   # another name is another origin
    ("http://127.0.0.1:4600", "127.0.0.1:4599", False),   # another port
    ("http://evil.example", "127.0.0.1:4599", False),
    ("http://evil.example:4599", "127.0.0.1:4599", False),
    ("null", "127.0.0.1:4599", False),                    # a sandboxed frame, a file
    ("ftp://127.0.0.1:4599", "127.0.0.1:4599", False),
    ("http://127.0.0.1:4599", None, False),
    ("http://127.0.0.1:4599", "", False),
])
def test_same_origin(origin: str | None, host: str | None, same: bool) -> None:
    assert security.same_origin(origin, host) is same
