"""Who is looking: login by token, roles in a signed session, CSRF tokens for every POST.

The session cookie is signed (itsdangerous through Starlette's
SessionMiddleware), so its role cannot be forged without the secret. Each
session carries a random CSRF token that every form repeats in a hidden field:
a page on another site can make a browser POST, but cannot read the token.

A session names its role *and* the token it logged in with, as an HMAC of
that token (the cookie is signed, not encrypted, so never the token or a
bare hash of it): every request checks it against the tokens configured
now, so rotating a token ends the sessions it opened, even though their
cookies are still validly signed.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets

from starlette.requests import Request

from ._settings import DashboardSettings

CSRF_FIELD = "csrf_token"


class Role(enum.Enum):
    """ADMIN may act; READER sees everything and changes nothing."""

    ADMIN = "admin"
    READER = "reader"


def _same(given: str, expected: str | None) -> bool:
    return expected is not None and hmac.compare_digest(given.encode(), expected.encode())


def role_for_token(settings: DashboardSettings, token: str) -> Role | None:
    """The role a login token grants, None for a wrong one (compared in constant time)."""
    if _same(token, settings.token):
        return Role.ADMIN
    if _same(token, settings.readonly_token):
        return Role.READER
    return None


def token_mark(key: bytes, token: str) -> str:
    """What a session keeps of its login token: an HMAC under the server's key.

    Keyed, so a reader of the (readable) cookie learns nothing to guess a weak
    token against offline; the same key on every server (the dashboard's
    secret) makes each accept the others' sessions.
    """
    return hmac.new(key, b"jobqueue-dashboard-login:" + token.encode(), hashlib.sha256).hexdigest()


def current_role(request: Request, settings: DashboardSettings, key: bytes) -> Role | None:
    """The caller's role; ADMIN for everyone when no token is configured (open mode).

    A session counts only while the token it logged in with is still the
    configured token of its role.
    """
    if not settings.auth_required:
        return Role.ADMIN
    role, mark = request.session.get("role"), request.session.get("token")
    if not isinstance(role, str) or not isinstance(mark, str):
        return None
    for granted, token in ((Role.ADMIN, settings.token), (Role.READER, settings.readonly_token)):
        if token is not None and role == granted.value and _same(mark, token_mark(key, token)):
            return granted
    return None


def log_in(request: Request, role: Role, mark: str) -> None:
    """Start a session of ``role``; ``mark`` is ``token_mark`` of the token it used."""
    # A fresh CSRF token on login: a token planted before it is worth nothing after.
    request.session.clear()
    request.session["role"] = role.value
    request.session["token"] = mark
    request.session["csrf"] = secrets.token_urlsafe(32)


def log_out(request: Request) -> None:
    request.session.clear()


def csrf_token(request: Request) -> str:
    """This session's CSRF token, created on first use."""
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def csrf_ok(request: Request, submitted: str) -> bool:
    expected = request.session.get("csrf")
    return isinstance(expected, str) and _same(submitted, expected)
