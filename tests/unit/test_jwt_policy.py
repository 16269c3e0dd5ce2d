"""JWT policy (issue 8, item 7): the key decides the one algorithm; a key that cannot serve
stops the start; `sub` is required; any token failure is `unauthorized`; cancels are the
owner's or an admin's."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from functools import cache
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.utils import base64url_encode

from consumers.settings import Settings
from consumers.subscribers.auth import Authenticator, AuthError, HeaderValue, Identity
from schemas.errors import ErrorCode

SECRET = "a-secret-of-thirty-two-bytes-or-more!"


def settings(**overrides: Any) -> Settings:
    return Settings(_env_file=None, auth_mode="jwt", **overrides)


@cache
def rsa_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


@cache
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def public_pem(key: Any) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def claims(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {"sub": "u-1", "tenant_id": "t-1", "exp": int(time.time()) + 600}
    values.update(overrides)
    return {k: v for k, v in values.items() if v is not None}


def bearer(token: str) -> dict[str, HeaderValue]:
    return {"authorization": f"Bearer {token}"}


def refusal(auth: Authenticator, headers: dict[str, HeaderValue]) -> AuthError:
    with pytest.raises(AuthError) as caught:
        auth.identify(headers)
    return caught.value


# --- start-up: a key that cannot serve is refused, naming its variable ------------------------


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"auth_jwt_secret": "short"}, "AUTH_JWT_SECRET must be at least 32 bytes"),
        ({"auth_jwt_secret": "x" * 31}, "AUTH_JWT_SECRET must be at least 32 bytes"),
        ({"auth_jwt_public_key": "not a key"}, "AUTH_JWT_PUBLIC_KEY does not load"),
        (
            {"auth_jwt_public_key": "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"},
            "AUTH_JWT_PUBLIC_KEY does not load",
        ),
        ({"auth_jwt_secret": public_pem(ec_key()) + "padding" * 5}, "AUTH_JWT_SECRET holds a PEM"),
        ({"auth_jwt_public_key": public_pem(rsa_key(1024))}, "RSA key of 1024 bits"),
        (
            {"auth_jwt_public_key": public_pem(ed25519.Ed25519PrivateKey.generate())},
            "RSA key (RS256) or a P-256 EC key (ES256)",
        ),
        (
            {"auth_jwt_public_key": public_pem(ec.generate_private_key(ec.SECP384R1()))},
            "P-256",
        ),
        ({}, "AUTH_JWT_SECRET or AUTH_JWT_PUBLIC_KEY"),
    ],
)
def test_a_key_that_cannot_serve_stops_the_start(overrides: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValueError, match="AUTH_JWT_") as caught:
        Authenticator(settings(**overrides))
    assert fragment in str(caught.value)


def test_keys_are_not_checked_when_authentication_is_off() -> None:
    Authenticator(Settings(_env_file=None, auth_jwt_secret="short"))


def test_a_pem_on_one_line_with_escaped_newlines_loads() -> None:
    pem = public_pem(ec_key()).replace("\n", "\\n")
    auth = Authenticator(settings(auth_jwt_public_key=pem))
    token = jwt.encode(claims(), ec_key(), algorithm="ES256")
    assert auth.identify(bearer(token)) == Identity("u-1", "t-1", None)


# --- only the algorithm that fits the key -----------------------------------------------------


def test_an_rsa_key_takes_rs256_only() -> None:
    auth = Authenticator(settings(auth_jwt_public_key=public_pem(rsa_key())))
    good = jwt.encode(claims(), rsa_key(), algorithm="RS256")
    assert auth.identify(bearer(good)) == Identity("u-1", "t-1", None)
    # An ES256 token against an RSA key made PyJWT raise InvalidKeyError, which escaped.
    es = jwt.encode(claims(), ec_key(), algorithm="ES256")
    assert refusal(auth, bearer(es)).code == ErrorCode.UNAUTHORIZED
    ps = jwt.encode(claims(), rsa_key(), algorithm="PS256")
    assert refusal(auth, bearer(ps)).code == ErrorCode.UNAUTHORIZED


def test_the_public_key_is_no_hmac_secret() -> None:
    """The classic confusion: an HS256 token signed with the public key's PEM as secret."""
    pem = public_pem(rsa_key())
    auth = Authenticator(settings(auth_jwt_public_key=pem))
    header = base64url_encode(b'{"alg":"HS256","typ":"JWT"}')
    payload = base64url_encode(json.dumps(claims(), separators=(",", ":")).encode())
    signing_input = header + b"." + payload
    signature = hmac.new(pem.encode(), signing_input, hashlib.sha256).digest()
    forged = (signing_input + b"." + base64url_encode(signature)).decode()
    assert refusal(auth, bearer(forged)).code == ErrorCode.UNAUTHORIZED


def test_an_ec_key_takes_es256_only() -> None:
    auth = Authenticator(settings(auth_jwt_public_key=public_pem(ec_key())))
    assert auth.identify(bearer(jwt.encode(claims(), ec_key(), algorithm="ES256"))) is not None
    rs = jwt.encode(claims(), rsa_key(), algorithm="RS256")
    assert refusal(auth, bearer(rs)).code == ErrorCode.UNAUTHORIZED


def test_a_secret_takes_hs256_only() -> None:
    auth = Authenticator(settings(auth_jwt_secret=SECRET))
    assert auth.identify(bearer(jwt.encode(claims(), SECRET, algorithm="HS256"))) is not None
    hs512 = jwt.encode(claims(), SECRET * 2, algorithm="HS512")
    assert refusal(auth, bearer(hs512)).code == ErrorCode.UNAUTHORIZED
    unsigned = jwt.encode(claims(), "", algorithm="none")
    assert refusal(auth, bearer(unsigned)).code == ErrorCode.UNAUTHORIZED


# --- claims and headers: every failure is `unauthorized`, and names no token ------------------


def hs(**overrides: Any) -> str:
    return jwt.encode(claims(**overrides), SECRET, algorithm="HS256")


@pytest.mark.parametrize(
    ("headers", "fragment"),
    [
        (bearer(hs(sub=None)), "sub"),
        (bearer(hs(exp=None)), "exp"),
        (bearer(hs(sub="")), "sub"),
        (bearer(hs(sub="u" * 257)), "sub claim must be a string of 1 to 256"),
        (bearer(hs(tenant_id=7)), "tenant_id claim must be a string"),
        (bearer(hs(tenant_id="t" * 257)), "tenant_id claim must be a string"),
        (bearer(hs(aud="another-service")), "audience"),
        (bearer(hs(nbf=int(time.time()) + 600)), "not yet valid"),
        (bearer("a.b.c"), "not valid"),
        (bearer("\x00\xff"), "not valid"),
        (bearer("x" * 20_000), "too long"),
        ({"authorization": None}, "missing"),
        ({"authorization": b"Bearer \xff\xfe"}, "not UTF-8"),
        ({"authorization": "Bearer " + hs(), "Authorization": "Bearer " + hs()}, "more than one"),
        ({}, "missing"),
    ],
)
def test_token_failures_are_unauthorized(headers: dict[str, HeaderValue], fragment: str) -> None:
    auth = Authenticator(settings(auth_jwt_secret=SECRET))
    refused = refusal(auth, headers)
    assert refused.code == ErrorCode.UNAUTHORIZED
    assert fragment.lower() in refused.message.lower(), refused.message
    assert SECRET not in refused.message and "eyJ" not in refused.message


def test_sub_must_be_a_string() -> None:
    auth = Authenticator(settings(auth_jwt_secret=SECRET))
    assert refusal(auth, bearer(hs(sub=42))).code == ErrorCode.UNAUTHORIZED


def test_the_audience_is_checked_when_configured() -> None:
    auth = Authenticator(settings(auth_jwt_secret=SECRET, auth_jwt_audience="video"))
    assert auth.identify(bearer(hs(aud="video"))) is not None
    assert refusal(auth, bearer(hs(aud="shop"))).code == ErrorCode.UNAUTHORIZED
    assert refusal(auth, bearer(hs())).code == ErrorCode.UNAUTHORIZED


# --- cancels: an admin may cancel any task, others only their own ------------------------------


@pytest.mark.parametrize("scope", ["video:admin", "read video:admin", ["video:admin", "x"]])
def test_an_admin_scope_may_cancel_any_task(scope: Any) -> None:
    auth = Authenticator(settings(auth_jwt_secret=SECRET))
    identity = auth.identify(bearer(hs(sub="ops", tenant_id=None, scope=scope)))
    assert identity is not None and identity.admin
    assert identity.may_cancel("u-1", "t-1") is None
    assert identity.may_cancel(None, None) is None


def test_others_may_cancel_only_their_own_tasks() -> None:
    auth = Authenticator(settings(auth_jwt_secret=SECRET))
    identity = auth.identify(bearer(hs(scope="video:admin-not")))
    assert identity is not None and not identity.admin
    assert identity.may_cancel("u-1", "t-1") is None
    assert identity.may_cancel("u-2", "t-1") == "the task belongs to another user"
    assert identity.may_cancel("u-1", "t-2") == "the task belongs to another tenant"
    assert identity.may_cancel("u-1", None) == "the task belongs to another tenant"
    # A task stored without a user (AUTH_MODE was none) is nobody's own: admins only.
    assert identity.may_cancel(None, None) == "the task belongs to another user"
