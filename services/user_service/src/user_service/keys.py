"""JWT signing keys: loading, development generation, ``kid`` thumbprints and the JWKS."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from jwt.algorithms import OKPAlgorithm, RSAAlgorithm

if TYPE_CHECKING:
    from user_service.config import UserServiceSettings

Algorithm = Literal["EdDSA", "RS256"]
PrivateKey = ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey
PublicKey = ed25519.Ed25519PublicKey | rsa.RSAPublicKey


@dataclass(frozen=True)
class SigningKey:
    """The active private key, its algorithm and its ``kid``."""

    private_key: PrivateKey
    algorithm: Algorithm
    kid: str


def generate_private_key(algorithm: Algorithm) -> PrivateKey:
    """A new Ed25519 or RSA-3072 key."""
    if algorithm == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    return rsa.generate_private_key(public_exponent=65537, key_size=3072)


def private_key_pem(key: PrivateKey) -> bytes:
    """PKCS#8 PEM without encryption (protect the file or the secret store instead)."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_jwk(key: PublicKey, algorithm: Algorithm | None = None) -> dict[str, Any]:
    """The public JWK with ``kid`` (RFC 7638 thumbprint), ``alg`` and ``use``."""
    if isinstance(key, ed25519.Ed25519PublicKey):
        jwk: dict[str, Any] = OKPAlgorithm.to_jwk(key, as_dict=True)
        members = ("crv", "kty", "x")
        alg = algorithm or "EdDSA"
    else:
        jwk = RSAAlgorithm.to_jwk(key, as_dict=True)
        members = ("e", "kty", "n")
        alg = algorithm or "RS256"
    canonical = json.dumps({m: jwk[m] for m in members}, separators=(",", ":"), sort_keys=True)
    digest = hashlib.sha256(canonical.encode()).digest()
    jwk.update(kid=base64.urlsafe_b64encode(digest).rstrip(b"=").decode(), alg=alg, use="sig")
    return jwk


def _load_private_key(pem: bytes, algorithm: Algorithm) -> PrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    expected = ed25519.Ed25519PrivateKey if algorithm == "EdDSA" else rsa.RSAPrivateKey
    if not isinstance(key, expected):
        raise ValueError(f"the JWT private key is not a {algorithm} key")
    return key


def _dev_key(settings: UserServiceSettings) -> bytes:
    """The development key in the data folder, generated on first use (mode 0600)."""
    path = settings.data_dir / f"jwt-signing-key-{settings.jwt.algorithm.lower()}.pem"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        pem = private_key_pem(generate_private_key(settings.jwt.algorithm))
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
    return path.read_bytes()


def load_signing_key(settings: UserServiceSettings) -> SigningKey:
    """The configured key (PEM in settings or a file), else the development key."""
    jwt_settings = settings.jwt
    if jwt_settings.private_key is not None:
        pem = jwt_settings.private_key.get_secret_value().encode()
    elif jwt_settings.private_key_file is not None:
        pem = Path(jwt_settings.private_key_file).read_bytes()
    else:
        pem = _dev_key(settings)
    key = _load_private_key(pem, jwt_settings.algorithm)
    kid = public_jwk(key.public_key(), jwt_settings.algorithm)["kid"]
    return SigningKey(private_key=key, algorithm=jwt_settings.algorithm, kid=kid)


def published_jwks(settings: UserServiceSettings, signing_key: SigningKey) -> dict[str, Any]:
    """The JWKS: the active public key first, then keys kept for rotation."""
    keys = [public_jwk(signing_key.private_key.public_key(), signing_key.algorithm)]
    for pem in settings.jwt.previous_public_keys:
        public = serialization.load_pem_public_key(pem.encode())
        if not isinstance(public, ed25519.Ed25519PublicKey | rsa.RSAPublicKey):
            raise ValueError("previous_public_keys holds a key that is neither Ed25519 nor RSA")
        jwk = public_jwk(public)
        if jwk["kid"] not in {k["kid"] for k in keys}:
            keys.append(jwk)
    return {"keys": keys}


@dataclass(frozen=True, slots=True)
class PublishedJwks:
    """The JWKS document served at ``/.well-known/jwks.json`` (built at start-up)."""

    document: dict[str, Any]
