"""Who sent a message: `AUTH_MODE=jwt` checks the `authorization: Bearer <token>` header.

The key decides the one algorithm accepted: HS256 for `AUTH_JWT_SECRET` (at least 32 bytes),
RS256 for an RSA `AUTH_JWT_PUBLIC_KEY`, ES256 for a P-256 one. A key that cannot serve is
refused at start-up, naming its variable. A token needs `exp` and `sub` (the user); its
`tenant_id` claim is the tenant, `models` may limit the models, and a `scope` holding
`video:admin` may cancel any task. Any failure of a token is `unauthorized`, and no message
quotes the token.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from consumers.settings import Settings
from schemas.errors import ErrorCode
from schemas.events import TENANT_ID_MAX_CHARS, USER_ID_MAX_CHARS

log = logging.getLogger("video.auth")

ADMIN_SCOPE = "video:admin"
SECRET_MIN_BYTES = 32
RSA_MIN_BITS = 2048
TOKEN_MAX_CHARS = 16 * 1024

# A header value as read from Kafka: text, None (a null value), or bytes that are not UTF-8.
HeaderValue = str | bytes | None


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
        """Why a request naming `user_id`/`tenant_id` does not fit this identity (None: it
        does; a request that names neither takes the token's)."""
        if user_id is not None and user_id != self.user_id:
            return "user_id: does not match the token's subject"
        if tenant_id is not None and tenant_id != self.tenant_id:
            return "tenant_id: does not match the token's tenant_id claim"
        return None

    def may_cancel(self, user_id: str | None, tenant_id: str | None) -> str | None:
        """Why this identity may not cancel a task of `user_id`/`tenant_id` (None: it may).
        An admin may cancel any task; anyone else only a task of their own user and tenant."""
        if self.admin:
            return None
        if user_id is None or user_id != self.user_id:
            return "the task belongs to another user"
        if tenant_id != self.tenant_id:
            return "the task belongs to another tenant"
        return None

    def may_use(self, model: str) -> bool:
        return self.models is None or model in self.models


def _verifying_key(settings: Settings) -> tuple[Any, str]:
    """The key and its one algorithm, or ValueError naming the variable at fault."""
    public_pem = (settings.auth_jwt_public_key or "").strip()
    if public_pem:
        if settings.auth_jwt_secret is not None:
            log.warning("AUTH_JWT_PUBLIC_KEY is set: AUTH_JWT_SECRET is ignored")
        if "\\n" in public_pem and "\n" not in public_pem:  # a PEM written on one line
            public_pem = public_pem.replace("\\n", "\n")
        try:
            key = load_pem_public_key(public_pem.encode())
        except (ValueError, TypeError) as exc:
            raise ValueError(
                f"AUTH_JWT_PUBLIC_KEY does not load as a PEM public key: {exc}"
            ) from None
        if isinstance(key, rsa.RSAPublicKey):
            if key.key_size < RSA_MIN_BITS:
                raise ValueError(
                    f"AUTH_JWT_PUBLIC_KEY is an RSA key of {key.key_size} bits; "
                    f"at least {RSA_MIN_BITS} are needed"
                )
            return key, "RS256"
        if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
            return key, "ES256"
        raise ValueError(
            "AUTH_JWT_PUBLIC_KEY must be an RSA key (RS256) or a P-256 EC key (ES256), "
            f"not {type(key).__name__}"
        )
    secret = settings.auth_jwt_secret.get_secret_value() if settings.auth_jwt_secret else ""
    if not secret:
        raise ValueError("AUTH_MODE=jwt needs AUTH_JWT_SECRET or AUTH_JWT_PUBLIC_KEY")
    if "-----BEGIN" in secret:
        raise ValueError(
            "AUTH_JWT_SECRET holds a PEM key; a public key goes in AUTH_JWT_PUBLIC_KEY"
        )
    if len(secret.encode()) < SECRET_MIN_BYTES:
        raise ValueError(f"AUTH_JWT_SECRET must be at least {SECRET_MIN_BYTES} bytes long")
    return secret.encode(), "HS256"


class Authenticator:
    def __init__(self, settings: Settings) -> None:
        self.enabled = settings.auth_mode == "jwt"
        self._audience = settings.auth_jwt_audience
        self._issuer = settings.auth_jwt_issuer
        self._key: Any = None
        self._algorithm = ""
        if self.enabled:  # refuses to start with a key that cannot serve
            self._key, self._algorithm = _verifying_key(settings)

    def identify(self, headers: Mapping[str, HeaderValue]) -> Identity | None:
        """The verified identity, or None when authentication is off. Raises AuthError."""
        if not self.enabled:
            return None
        values = [v for k, v in headers.items() if k.lower() == "authorization"]
        if len(values) > 1:
            raise AuthError(ErrorCode.UNAUTHORIZED, "more than one authorization header")
        header = values[0] if values else None
        if not header:
            raise AuthError(ErrorCode.UNAUTHORIZED, "the authorization header is missing")
        if isinstance(header, bytes):
            raise AuthError(ErrorCode.UNAUTHORIZED, "the authorization header is not UTF-8 text")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise AuthError(
                ErrorCode.UNAUTHORIZED, "the authorization header must be 'Bearer <token>'"
            )
        if len(token) > TOKEN_MAX_CHARS:
            raise AuthError(ErrorCode.UNAUTHORIZED, "the token is too long")
        claims = self._verify(token)
        return Identity(
            user_id=_claim_text(claims, "sub", USER_ID_MAX_CHARS, required=True),
            tenant_id=_claim_text(claims, "tenant_id", TENANT_ID_MAX_CHARS, required=False),
            models=_models(claims.get("models")),
            admin=ADMIN_SCOPE in _scopes(claims.get("scope")),
        )

    def _verify(self, token: str) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._key,
                algorithms=[self._algorithm],
                audience=self._audience,
                issuer=self._issuer,
                # With no audience configured, a token meant for an audience is refused.
                options={"require": ["exp", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise AuthError(ErrorCode.UNAUTHORIZED, "the token has expired") from None
        except jwt.PyJWTError as exc:
            # The library's message names the failed check, never the token itself.
            message = str(exc)[:200].encode("utf-8", errors="replace").decode()
            raise AuthError(ErrorCode.UNAUTHORIZED, f"the token is not valid: {message}") from None
        return claims


def _claim_text(claims: Mapping[str, Any], name: str, limit: int, *, required: bool) -> str | None:
    value = claims.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value or len(value) > limit:
        raise AuthError(
            ErrorCode.UNAUTHORIZED,
            f"the token's {name} claim must be a string of 1 to {limit} characters",
        )
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise AuthError(
            ErrorCode.UNAUTHORIZED, f"the token's {name} claim is not valid Unicode"
        ) from None
    return value


def _models(claim: object) -> frozenset[str] | None:
    if claim is None:
        return None
    if not (isinstance(claim, list) and all(isinstance(m, str) for m in claim)):
        raise AuthError(
            ErrorCode.FORBIDDEN, "the token's models claim must be a list of model names"
        )
    return frozenset(claim)


def _scopes(claim: object) -> set[str]:
    """OAuth's space-separated `scope` string, or a list of strings."""
    if isinstance(claim, str):
        return set(claim.split())
    if isinstance(claim, list):
        return {s for s in claim if isinstance(s, str)}
    return set()
