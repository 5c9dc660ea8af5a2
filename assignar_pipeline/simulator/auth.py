"""OAuth2 client-credentials token endpoint and bearer-token checks, like login.assignar.com.

Token lifetimes run on the wall clock (monotonic), not the simulated clock, so `advance` never
expires tokens and a short TTL really expires them during a test.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

SCOPE = "target-entity:b816a5d3-40c3-477f-a551-1d066d7211cc:api_access"
DEFAULT_CLIENT_ID = "demo-client"
DEFAULT_CLIENT_SECRET = "demo-secret-change-me"  # noqa: S105 - documented demo value
DEFAULT_TOKEN_TTL = 3600


@dataclass
class TokenInfo:
    client_id: str
    expires_at: float  # time.monotonic()
    generation: int


@dataclass
class TokenResult:
    status: int
    body: dict[str, object]
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Auth:
    """Accepted credentials, issued tokens and the revocation generation."""

    def __init__(self, client_id: str, client_secret: str, token_ttl: int) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.token_ttl = token_ttl
        self.tokens: dict[str, TokenInfo] = {}
        self.generation = 0  # tokens issued before the current generation are revoked
        self.issued = 0
        self._key = secrets.token_bytes(32)

    def set_credentials(self, client_id: str | None, client_secret: str | None) -> None:
        """Accept new credentials from now on; tokens issued so far stop working."""
        if client_id is not None:
            self.client_id = client_id
        if client_secret is not None:
            self.client_secret = client_secret
        self.revoke_all()

    def revoke_all(self) -> None:
        self.generation += 1

    def issue(self, client_id: str) -> str:
        now = time.time()
        payload = {
            "iss": "https://login.assignar.com",
            "sub": client_id,
            "scope": SCOPE,
            "iat": int(now),
            "exp": int(now) + self.token_ttl,
            "jti": secrets.token_hex(8),
        }
        # JWT-shaped like the real token, but opaque to clients: only this simulator can check it.
        head = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        body = _b64url(json.dumps(payload, separators=(",", ":")).encode())
        sig = _b64url(hmac.new(self._key, f"{head}.{body}".encode(), hashlib.sha256).digest())
        token = f"{head}.{body}.{sig}"
        self.tokens[token] = TokenInfo(
            client_id, time.monotonic() + self.token_ttl, self.generation
        )
        self.issued += 1
        return token

    def check_bearer(self, authorization: str | None) -> bool:
        """True when the Authorization header carries a live token of the current generation."""
        if not authorization:
            return False
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer":
            return False
        info = self.tokens.get(token.strip())
        if info is None:
            return False
        if info.generation != self.generation or info.client_id != self.client_id:
            return False
        if time.monotonic() >= info.expires_at:
            del self.tokens[token.strip()]
            return False
        return True

    def token_request(
        self, authorization: str | None, body: bytes, *, scope_granted: bool = True
    ) -> TokenResult:
        """Handle POST /oauth2/token. Errors follow RFC 6749 §5.2."""
        client = _basic_credentials(authorization)
        if client is None or not (
            hmac.compare_digest(client[0], self.client_id)
            and hmac.compare_digest(client[1], self.client_secret)
        ):
            return TokenResult(
                401,
                {"error": "invalid_client"},
                [(b"www-authenticate", b'Basic realm="assignar"')],
            )
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        grant = form.get("grant_type")
        if not grant:
            return TokenResult(400, {"error": "invalid_request"})
        if grant != "client_credentials":
            return TokenResult(400, {"error": "unsupported_grant_type"})
        requested = form.get("scope", "").split()
        # The scope is validated against what the account was granted; a tenant without API
        # access (or a wrong scope string) gets invalid_scope.
        if not requested or any(s != SCOPE for s in requested) or not scope_granted:
            return TokenResult(400, {"error": "invalid_scope"})
        token = self.issue(client[0])
        return TokenResult(
            200,
            {"access_token": token, "token_type": "Bearer", "expires_in": self.token_ttl},
            [(b"cache-control", b"no-store"), (b"pragma", b"no-cache")],
        )


def _basic_credentials(authorization: str | None) -> tuple[str, str] | None:
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    client_id, sep, secret = decoded.partition(":")
    return (client_id, secret) if sep else None
