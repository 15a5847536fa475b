"""Access tokens are standard JWTs: verifiable by plain PyJWT, and forgeries are refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from user_service.config import UserServiceSettings
from user_service.keys import load_signing_key

from ..utils.auth import bearer, login
from ..utils.clients import ClientWith
from ..utils.users import register

pytestmark = pytest.mark.integration


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.fixture
async def tokens(client: httpx.AsyncClient) -> dict[str, Any]:
    user = await register(client)
    return await login(client, user["email"])


@pytest.fixture
def claims(tokens: dict[str, Any]) -> dict[str, Any]:
    decoded: dict[str, Any] = jwt.decode(
        tokens["access_token"], options={"verify_signature": False}
    )
    return decoded


async def _status(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})


class TestPublishedKeys:
    async def test_plain_pyjwt_verifies_a_token_with_the_jwks(
        self, client: httpx.AsyncClient, tokens: dict[str, Any], settings: UserServiceSettings
    ) -> None:
        response = await client.get("/.well-known/jwks.json")
        assert "max-age" in response.headers["cache-control"]
        keyset = jwt.PyJWKSet.from_dict(response.json())
        kid = jwt.get_unverified_header(tokens["access_token"])["kid"]
        key = next(k for k in keyset.keys if k.key_id == kid)
        claims = jwt.decode(
            tokens["access_token"],
            key,
            algorithms=["EdDSA"],
            audience=settings.jwt.audience,
            issuer=settings.jwt.issuer,
        )
        assert claims["sid"] == tokens["session_id"]
        assert claims["scope"] == "user"
        assert set(claims) >= {"iss", "aud", "sub", "exp", "iat", "nbf", "jti", "sid", "scope"}
        assert claims["client_id"] == "first-party"
        assert jwt.get_unverified_header(tokens["access_token"])["typ"] == "at+jwt"

    async def test_authorization_server_metadata_validates_with_authlib(
        self, client_with: ClientWith
    ) -> None:
        """RFC 8414, validated by an independent implementation (which requires https)."""
        async with client_with(jwt={"issuer": "https://users.example"}) as client:
            response = await client.get("/.well-known/oauth-authorization-server")
        doc = response.json()
        AuthorizationServerMetadata(doc).validate()
        assert doc["issuer"] == "https://users.example"
        assert doc["token_endpoint"] == "https://users.example/oauth/token"
        assert doc["introspection_endpoint"] == "https://users.example/oauth/introspect"
        assert set(doc["grant_types_supported"]) == {
            "password",
            "refresh_token",
            "client_credentials",
        }
        assert "authorization_endpoint" not in doc

    async def test_there_is_no_openid_document(self, client: httpx.AsyncClient) -> None:
        """No ID tokens are issued: advertising OpenID Connect would be false."""
        assert (await client.get("/.well-known/openid-configuration")).status_code == 404


class TestForgedTokens:
    async def test_changed_signature(
        self, client: httpx.AsyncClient, tokens: dict[str, Any]
    ) -> None:
        head, body, sig = tokens["access_token"].split(".")
        forged = f"{head}.{body}.{sig[:-4]}{'AAAA' if sig[-4:] != 'AAAA' else 'BBBB'}"
        response = await _status(client, forged)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'

    async def test_alg_none(self, client: httpx.AsyncClient, claims: dict[str, Any]) -> None:
        header = {"alg": "none", "typ": "at+jwt", "kid": "x"}
        token = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}."
        assert (await _status(client, token)).status_code == 401

    async def test_hs256_signed_with_the_public_key(
        self,
        client: httpx.AsyncClient,
        tokens: dict[str, Any],
        claims: dict[str, Any],
        settings: UserServiceSettings,
    ) -> None:
        kid = jwt.get_unverified_header(tokens["access_token"])["kid"]
        public_pem = (
            load_signing_key(settings)
            .private_key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        signing_input = (
            f"{_b64(json.dumps({'alg': 'HS256', 'typ': 'at+jwt', 'kid': kid}).encode())}."
            f"{_b64(json.dumps(claims).encode())}"
        )
        mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
        assert (await _status(client, f"{signing_input}.{_b64(mac)}")).status_code == 401

    async def test_unknown_kid(self, client: httpx.AsyncClient, claims: dict[str, Any]) -> None:
        other = ed25519.Ed25519PrivateKey.generate()
        token = jwt.encode(
            claims, other, algorithm="EdDSA", headers={"kid": "unknown", "typ": "at+jwt"}
        )
        assert (await _status(client, token)).status_code == 401

    async def test_right_kid_wrong_key(
        self, client: httpx.AsyncClient, tokens: dict[str, Any], claims: dict[str, Any]
    ) -> None:
        kid = jwt.get_unverified_header(tokens["access_token"])["kid"]
        other = ed25519.Ed25519PrivateKey.generate()
        token = jwt.encode(claims, other, algorithm="EdDSA", headers={"kid": kid, "typ": "at+jwt"})
        assert (await _status(client, token)).status_code == 401

    @pytest.mark.parametrize(
        "change",
        [
            {"iss": "https://evil.example.com"},
            {"aud": "another-api"},
            {"exp": datetime.now(UTC) - timedelta(minutes=1)},
            {"nbf": datetime.now(UTC) + timedelta(minutes=5)},
            {"exp": None},
            {"sid": None},
            {"sub": "not-a-uuid"},
            {"client_id": None},
        ],
        ids=[
            "issuer",
            "audience",
            "expired",
            "not-yet-valid",
            "no-exp",
            "no-sid",
            "bad-sub",
            "no-client-id",
        ],
    )
    async def test_validly_signed_but_wrong_claims(
        self,
        client: httpx.AsyncClient,
        claims: dict[str, Any],
        settings: UserServiceSettings,
        change: dict[str, Any],
    ) -> None:
        key = load_signing_key(settings)
        payload = {**claims, **change, "jti": uuid.uuid4().hex}
        payload = {k: v for k, v in payload.items() if v is not None}
        headers = {"kid": key.kid, "typ": "at+jwt"}
        token = jwt.encode(payload, key.private_key, algorithm="EdDSA", headers=headers)
        response = await _status(client, token)
        assert response.status_code == 401
        assert response.json()["error"] == "invalid_token"

    async def test_a_jwt_of_another_type_is_refused(
        self, client: httpx.AsyncClient, claims: dict[str, Any], settings: UserServiceSettings
    ) -> None:
        """RFC 9068 §4: the right key and claims, but not typed as an access token."""
        key = load_signing_key(settings)
        payload = {**claims, "jti": uuid.uuid4().hex}
        token = jwt.encode(payload, key.private_key, algorithm="EdDSA", headers={"kid": key.kid})
        assert (await _status(client, token)).status_code == 401

    async def test_the_untouched_token_still_works(
        self, client: httpx.AsyncClient, tokens: dict[str, Any]
    ) -> None:
        assert (await client.get("/api/v1/users/me", headers=bearer(tokens))).status_code == 200
