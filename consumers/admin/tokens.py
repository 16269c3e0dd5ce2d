"""The operator's token, under `AUTH_MODE=jwt`: checked here before anything is sent.

Where this environment has the service's key (`AUTH_JWT_SECRET` or `AUTH_JWT_PUBLIC_KEY`), the
token is verified as the service will verify it; elsewhere only its claims are read (expiry,
subject, tenant, scope) and the service does the rest. Tokens are never printed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import jwt

from consumers.settings import Settings
from consumers.subscribers.auth import ADMIN_SCOPE, Authenticator, AuthError


class TokenProblem(Exception):
    """The token cannot do what the command needs; the message says why (never the token)."""


@dataclass(frozen=True)
class Bearer:
    token: str
    subject: str | None
    tenant_id: str | None
    admin: bool
    verified: bool  # checked with the service's key here

    @property
    def header(self) -> bytes:
        return f"Bearer {self.token}".encode()


def bearer(settings: Settings, token: str | None, *, admin: bool) -> Bearer | None:
    """The token to send, checked; None when none is needed and none was given. Raises
    TokenProblem."""
    token = _bare(token)
    if settings.auth_mode != "jwt":
        return Bearer(token, None, None, False, False) if token else None
    if not token:
        raise TokenProblem(
            "AUTH_MODE=jwt: give a token with --token (or VIDEO_ADMIN_TOKEN)"
            + (f", with scope {ADMIN_SCOPE}" if admin else "")
        )
    try:
        authenticator: Authenticator | None = Authenticator(settings)
    except ValueError:
        authenticator = None  # the service's key is not in this environment
    if authenticator is not None:
        try:
            identity = authenticator.identify({"authorization": f"Bearer {token}"})
        except AuthError as exc:
            raise TokenProblem(f"the token is refused: {exc.message}") from None
        assert identity is not None
        found = Bearer(token, identity.user_id, identity.tenant_id, identity.admin, True)
    else:
        found = _unverified(token)
    if admin and not found.admin:
        raise TokenProblem(
            f"the token's scope does not hold {ADMIN_SCOPE}: the service only lets an admin "
            "cancel tasks of other users"
        )
    return found


def _bare(token: str | None) -> str | None:
    if token is None:
        return None
    token = token.strip()
    if token.lower().startswith("bearer "):
        token = token[7:].strip()
    return token or None


def _unverified(token: str) -> Bearer:
    try:
        claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise TokenProblem(f"the token cannot be read: {str(exc)[:200]}") from None
    exp = claims.get("exp")
    if not isinstance(exp, int | float):
        raise TokenProblem("the token has no exp claim: the service refuses it")
    if exp <= time.time():
        raise TokenProblem("the token has expired")
    scope = claims.get("scope")
    if isinstance(scope, str):
        scopes = set(scope.split())
    else:
        scopes = {s for s in scope if isinstance(s, str)} if isinstance(scope, list) else set()
    subject, tenant = claims.get("sub"), claims.get("tenant_id")
    return Bearer(
        token,
        subject if isinstance(subject, str) else None,
        tenant if isinstance(tenant, str) else None,
        ADMIN_SCOPE in scopes,
        False,
    )
