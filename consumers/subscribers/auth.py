"""Who sent a message: `AUTH_MODE=jwt` checks the `authorization: Bearer <token>` header."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import jwt

from consumers.settings import Settings
from schemas.errors import ErrorCode


class AuthError(Exception):
    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Identity:
    user_id: str | None
    tenant_id: str | None
    models: frozenset[str] | None  # None: any model
    admin: bool = False  # the token's `scope` claim holds `video:admin`: may cancel any task

    def mismatch(self, user_id: str | None, tenant_id: str | None) -> str | None:
        if user_id is not None and user_id != self.user_id:
            return "user_id: does not match the token's subject"
        if tenant_id is not None and tenant_id != self.tenant_id:
            return "tenant_id: does not match the token's tenant_id claim"
        return None

    def may_cancel(self, user_id: str | None, tenant_id: str | None) -> str | None:
        """Why this identity may not cancel a task of `user_id`/`tenant_id` (None: it may)."""
        return None if self.admin else self.mismatch(user_id, tenant_id)

    def may_use(self, model: str) -> bool:
        return self.models is None or model in self.models


class Authenticator:
    def __init__(self, settings: Settings) -> None:
        self.enabled = settings.auth_mode == "jwt"
        self._audience = settings.auth_jwt_audience
        self._issuer = settings.auth_jwt_issuer
        if settings.auth_jwt_public_key:
            self._key: str = settings.auth_jwt_public_key
            self._algorithms = ["RS256", "ES256"]
        else:
            secret = settings.auth_jwt_secret
            self._key = secret.get_secret_value() if secret else ""
            self._algorithms = ["HS256"]
        if self.enabled and not self._key:
            raise ValueError("AUTH_MODE=jwt needs AUTH_JWT_SECRET or AUTH_JWT_PUBLIC_KEY")

    def identify(self, headers: Mapping[str, str]) -> Identity | None:
        """The verified identity, or None when authentication is off. Raises AuthError."""
        if not self.enabled:
            return None
        header = next((v for k, v in headers.items() if k.lower() == "authorization"), None)
        if not header:
            raise AuthError(ErrorCode.UNAUTHORIZED, "the authorization header is missing")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthError(
                ErrorCode.UNAUTHORIZED, "the authorization header must be 'Bearer <token>'"
            )
        try:
            claims = jwt.decode(
                token.strip(),
                self._key,
                algorithms=self._algorithms,
                audience=self._audience,
                issuer=self._issuer,
                options={"require": ["exp"], "verify_aud": self._audience is not None},
            )
        except jwt.ExpiredSignatureError:
            raise AuthError(ErrorCode.UNAUTHORIZED, "the token has expired") from None
        except jwt.InvalidTokenError as exc:
            # The library's message names the failed check, never the token itself.
            raise AuthError(ErrorCode.UNAUTHORIZED, f"the token is not valid: {exc}") from None
        models = claims.get("models")
        if models is not None and not (
            isinstance(models, list) and all(isinstance(m, str) for m in models)
        ):
            raise AuthError(
                ErrorCode.FORBIDDEN, "the token's models claim must be a list of model names"
            )
        return Identity(
            user_id=str(claims["sub"]) if claims.get("sub") is not None else None,
            tenant_id=str(claims["tenant_id"]) if claims.get("tenant_id") is not None else None,
            models=frozenset(models) if models is not None else None,
            admin=ADMIN_SCOPE in _scopes(claims.get("scope")),
        )


ADMIN_SCOPE = "video:admin"


def _scopes(claim: object) -> set[str]:
    """OAuth's space-separated `scope` string, or a list of strings."""
    if isinstance(claim, str):
        return set(claim.split())
    if isinstance(claim, list):
        return {s for s in claim if isinstance(s, str)}
    return set()
