"""The console's guards: sessions, sign-in, cross-site request forgery, and the Host header.

- **Sessions** are signed cookies (HMAC-SHA256 with a key made when the server starts, so a
  restart signs everyone out): a random session id, who signed in (``-`` when the server has no
  credentials), and an expiry. ``HttpOnly`` and ``SameSite=Strict``.
- **Sign-in**: with credentials configured (the same file the API's SigV4 checks use), every
  page asks for an access key id and its secret access key first; the secret is compared in
  constant time and never stored in the cookie.
- **Forgery**: every form carries a token derived from the session id; a state-changing request
  without the right token, or from another origin (``Origin``), is refused.
- **DNS rebinding**: without credentials the console answers only to a loopback ``Host``, so a
  page from elsewhere that resolves its name to 127.0.0.1 cannot read it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from reconciler.server import is_loopback

COOKIE = "flywheel_session"
ANONYMOUS = "-"
CSRF_FIELD = "csrf"
#: A signed-in session lasts this long (seconds).
SESSION_SECONDS = 12 * 3600


@dataclass(frozen=True)
class Session:
    id: str
    user: str
    expires: int

    @property
    def signed_in(self) -> bool:
        return self.user != ANONYMOUS


class Guard:
    """Signs and checks sessions and forms for one running server."""

    def __init__(self, keys: Mapping[str, str] | None, *,
                 clock: Callable[[], float] = time.time, secret: bytes | None = None) -> None:
        self.keys = dict(keys) if keys is not None else None
        self.clock = clock
        self._secret = secret or secrets.token_bytes(32)

    @property
    def sign_in_required(self) -> bool:
        return self.keys is not None

    # sessions -------------------------------------------------------------------------------

    def new_session(self, user: str = ANONYMOUS) -> Session:
        return Session(secrets.token_urlsafe(18), user, int(self.clock()) + SESSION_SECONDS)

    def cookie_value(self, session: Session) -> str:
        payload = f"{session.id}.{session.user}.{session.expires}"
        return f"{payload}.{self._mac('session', payload)}"

    def session_of(self, cookie: str | None) -> Session | None:
        """The session a cookie carries, if its signature holds and it has not expired."""
        if not cookie or len(cookie) > 512:
            return None
        parts = cookie.split(".")
        if len(parts) != 4 or not parts[2].isdigit():
            return None
        payload = ".".join(parts[:3])
        if not _same(parts[3], self._mac("session", payload)):
            return None
        session = Session(parts[0], parts[1], int(parts[2]))
        if session.expires < self.clock():
            return None
        if self.sign_in_required and session.signed_in and session.user not in (self.keys or {}):
            return None  # a key taken out of the credentials file since
        return session

    def sign_in(self, access_key_id: str, secret_access_key: str) -> Session | None:
        """A signed-in session for a right key pair, else None (compared in constant time)."""
        if self.keys is None:
            return self.new_session()
        expected = self.keys.get(access_key_id)
        given = secret_access_key.encode()
        if expected is None:
            hmac.compare_digest(given, given)  # the same work for an unknown key id
            return None
        if not hmac.compare_digest(given, expected.encode()):
            return None
        return self.new_session(access_key_id)

    def allowed(self, session: Session | None) -> bool:
        """Whether a request in ``session`` may see the console."""
        if not self.sign_in_required:
            return True
        return session is not None and session.signed_in

    # forms ----------------------------------------------------------------------------------

    def csrf_token(self, session: Session) -> str:
        return self._mac("csrf", session.id)[:40]

    def csrf_ok(self, session: Session | None, token: str | None) -> bool:
        if session is None or not token:
            return False
        return _same(token, self.csrf_token(session))

    def _mac(self, purpose: str, payload: str) -> str:
        return hmac.new(self._secret, f"{purpose}:{payload}".encode(),
                        hashlib.sha256).hexdigest()


def _same(given: str, expected: str) -> bool:
    """Constant-time equality of a value from a request (any characters) and one of ours."""
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode())


def loopback_host(host_header: str | None) -> bool:
    """Whether a ``Host`` header names this machine by a loopback address or ``localhost``."""
    if not host_header:
        return False
    return is_loopback(urlsplit(f"//{host_header}").hostname or "")


def same_origin(origin: str | None, host_header: str | None) -> bool:
    """Whether a request's ``Origin`` (when the browser sent one) is this server's."""
    if origin is None:
        return True
    if origin == "null" or not host_header:
        return False
    parts = urlsplit(origin)
    return parts.scheme in {"http", "https"} and parts.netloc == host_header
