"""Signed session cookies and CSRF tokens for the web pages.

The cookie holds ``base64url(json) "." hex(HMAC-SHA256(secret, base64url(json)))``; nothing is
stored on the server, so every worker process accepts every other's cookies as long as they share
the secret. The secret is 32 random bytes in ``<data dir>/web-secret``, made on first use (written
to a temporary file and hard-linked into place, so two workers starting at once agree on one).
Deleting the file signs everybody out.

Every session, signed in or not, carries a random CSRF token; each POST form repeats it in a
hidden field and the handler compares the two. SameSite=Lax already keeps other sites' POSTs from
carrying the cookie; the token also covers browsers and proxies that drop SameSite.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response

COOKIE = "liftlog_session"
#: A session lasts 12 hours from sign-in, then the user signs in again.
MAX_AGE_S = 12 * 3600
SECRET_FILE = "web-secret"


def load_secret(data_dir: Path) -> bytes:
    """The signing secret in `data_dir`, created (mode 0600) if there is none yet."""
    path = data_dir / SECRET_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        tmp = data_dir / f".{SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(32))
        try:
            os.link(tmp, path)  # fails if another process got there first: use theirs
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    secret = path.read_bytes()
    if len(secret) < 32:
        raise RuntimeError(f"{path} is shorter than 32 bytes; delete it to make a new one")
    return secret


@dataclass(frozen=True, slots=True)
class Session:
    csrf: str
    expires: int  # epoch seconds
    user_id: int | None = None
    #: The user's `liftlog.catalog.users.User.stamp` at sign-in.
    stamp: str | None = None


class Sessions:
    """Reads and writes the session cookie; `clock` gives epoch seconds (injected for tests)."""

    def __init__(self, secret: bytes, clock: Callable[[], float] = time.time) -> None:
        self._secret = secret
        self._clock = clock

    def _sign(self, payload: bytes) -> str:
        return hmac.new(self._secret, payload, hashlib.sha256).hexdigest()

    def read(self, request: Request) -> Session | None:
        """The request's session if its cookie is intact and unexpired, else None."""
        raw = request.cookies.get(COOKIE, "")
        body, _, signature = raw.partition(".")
        if not hmac.compare_digest(self._sign(body.encode()), signature):
            return None
        try:
            doc = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
            session = Session(str(doc["csrf"]), int(doc["exp"]), doc.get("uid"), doc.get("st"))
        except (ValueError, KeyError, TypeError):
            return None
        return session if session.expires > self._clock() else None

    def new(self, user_id: int | None = None, stamp: str | None = None) -> Session:
        """A fresh session with a fresh CSRF token (signing in gets a new one: no fixation)."""
        expires = int(self._clock()) + MAX_AGE_S
        return Session(secrets.token_urlsafe(32), expires, user_id, stamp)

    def write(self, response: Response, session: Session, *, secure: bool) -> None:
        doc = {
            "csrf": session.csrf, "exp": session.expires, "uid": session.user_id,
            "st": session.stamp,
        }  # fmt: skip
        body = base64.urlsafe_b64encode(json.dumps(doc).encode()).decode().rstrip("=")
        response.set_cookie(
            COOKIE,
            f"{body}.{self._sign(body.encode())}",
            max_age=max(0, session.expires - int(self._clock())),
            path="/",  # the OAuth consent page (/oauth/authorize) reads it too
            httponly=True,
            samesite="lax",
            secure=secure,
        )

    def clear(self, response: Response) -> None:
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax")


def csrf_ok(session: Session | None, sent: object) -> bool:
    return (
        session is not None
        and isinstance(sent, str)
        and hmac.compare_digest(session.csrf.encode(), sent.encode())
    )
