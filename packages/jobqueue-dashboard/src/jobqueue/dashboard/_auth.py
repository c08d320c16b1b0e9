"""Who is looking: login by token, roles in a signed session, CSRF tokens for every POST.

The session cookie is signed (itsdangerous through Starlette's
SessionMiddleware), so its role cannot be forged without the secret. Each
session carries a random CSRF token that every form repeats in a hidden field:
a page on another site can make a browser POST, but cannot read the token.
"""

from __future__ import annotations

import enum
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


def current_role(request: Request, settings: DashboardSettings) -> Role | None:
    """The caller's role; ADMIN for everyone when no token is configured (open mode)."""
    if not settings.auth_required:
        return Role.ADMIN
    value = request.session.get("role")
    try:
        return Role(value) if isinstance(value, str) else None
    except ValueError:
        return None


def log_in(request: Request, role: Role) -> None:
    # A fresh CSRF token on login: a token planted before it is worth nothing after.
    request.session.clear()
    request.session["role"] = role.value
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
