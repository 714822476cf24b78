"""A scripted OpenID Connect provider on a real port: discovery, keys, authorize and token
endpoints that behave like a real one (single-use codes, PKCE, client secret), with faults a
test can inject into the ID token it issues (another audience, an expired token, a key it does
not publish, a wrong nonce) and keys it can rotate."""

import base64
import hashlib
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from tests.support.servers import ThreadedServer

__all__ = ["IdTokenFaults", "ScriptedIdentityProvider"]

CLIENT_ID = "switchboard-test"
CLIENT_SECRET = "a-test-client-secret-that-is-long-enough"


@dataclass
class IdTokenFaults:
    audience: str | None = None
    expires_in_s: int = 300
    nonce: str | None = None
    issuer: str | None = None
    sign_with_unpublished_key: bool = False


@dataclass
class _Grant:
    subject: str
    nonce: str
    challenge: str
    redirect_uri: str


@dataclass
class ScriptedIdentityProvider:
    people: dict[str, dict[str, Any]] = field(default_factory=dict)
    faults: IdTokenFaults = field(default_factory=IdTokenFaults)
    # Who the next authorization request signs in (the test's "person at the keyboard").
    next_subject: str = ""
    _keys: list[RSAKey] = field(default_factory=list)
    _codes: dict[str, _Grant] = field(default_factory=dict)
    _server: ThreadedServer | None = None
    jwks_fetches: int = 0

    def __post_init__(self) -> None:
        self._keys.append(self._new_key())

    @staticmethod
    def _new_key() -> RSAKey:
        return RSAKey.generate_key(2048, parameters={"kid": secrets.token_hex(4)}, private=True)

    @property
    def url(self) -> str:
        assert self._server is not None
        return self._server.base_url

    def rotate_keys(self) -> None:
        """Sign with a new key from now on, publishing it beside the old one."""
        self._keys.insert(0, self._new_key())

    def __enter__(self) -> "ScriptedIdentityProvider":
        routes = [
            Route("/.well-known/openid-configuration", self._discovery),
            Route("/jwks", self._jwks),
            Route("/authorize", self._authorize),
            Route("/token", self._token, methods=["POST"]),
        ]
        self._server = ThreadedServer(Starlette(routes=routes)).__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.__exit__(None, None, None)

    async def _discovery(self, request: Request) -> Response:
        return JSONResponse(
            {
                "issuer": self.url,
                "authorization_endpoint": f"{self.url}/authorize",
                "token_endpoint": f"{self.url}/token",
                "jwks_uri": f"{self.url}/jwks",
                "response_types_supported": ["code"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
            }
        )

    async def _jwks(self, request: Request) -> Response:
        self.jwks_fetches += 1
        return JSONResponse(KeySet(list(self._keys)).as_dict(private=False))

    async def _authorize(self, request: Request) -> Response:
        params = request.query_params
        if params.get("client_id") != CLIENT_ID or params.get("code_challenge_method") != "S256":
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        code = secrets.token_urlsafe(16)
        self._codes[code] = _Grant(
            subject=self.next_subject,
            nonce=params.get("nonce", ""),
            challenge=params.get("code_challenge", ""),
            redirect_uri=params.get("redirect_uri", ""),
        )
        query = urlencode({"code": code, "state": params.get("state", "")})
        return RedirectResponse(f"{params['redirect_uri']}?{query}", status_code=302)

    def _client_ok(self, request: Request, form: dict[str, str]) -> bool:
        header = request.headers.get("authorization", "")
        if header.lower().startswith("basic "):
            decoded = base64.b64decode(header[6:]).decode()
            client_id, _, secret = decoded.partition(":")
        else:
            client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        return client_id == CLIENT_ID and secret == CLIENT_SECRET

    async def _token(self, request: Request) -> Response:
        form = {key: str(value) for key, value in (await request.form()).items()}
        if not self._client_ok(request, form):
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        grant = self._codes.pop(form.get("code", ""), None)  # a code works once
        if grant is None:
            return JSONResponse(
                {"error": "invalid_grant", "error_description": "unknown or used code"},
                status_code=400,
            )
        verifier = form.get("code_verifier", "")
        digest = hashlib.sha256(verifier.encode()).digest()
        if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != grant.challenge:
            return JSONResponse(
                {"error": "invalid_grant", "error_description": "PKCE verifier mismatch"},
                status_code=400,
            )
        if form.get("redirect_uri") != grant.redirect_uri:
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        now = int(time.time())
        faults = self.faults
        claims = {
            **self.people.get(grant.subject, {}),
            "iss": faults.issuer or self.url,
            "sub": grant.subject,
            "aud": faults.audience or CLIENT_ID,
            "iat": now,
            "exp": now + faults.expires_in_s,
            "nonce": faults.nonce if faults.nonce is not None else grant.nonce,
        }
        key = self._new_key() if faults.sign_with_unpublished_key else self._keys[0]
        id_token = jwt.encode({"alg": "RS256", "kid": key.kid}, claims, key)
        return JSONResponse(
            {
                "access_token": secrets.token_urlsafe(16),
                "token_type": "Bearer",
                "expires_in": 300,
                "id_token": id_token,
            }
        )
