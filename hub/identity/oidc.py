"""Signing people in with the company's identity provider: OpenID Connect's authorization
code flow with PKCE, state and nonce.

The provider's discovery document and keys are fetched when first needed and kept; an ID
token signed with a key the cached set lacks makes the client fetch the keys again once (the
provider rotated them) before it refuses the token. Every check on the ID token (signature,
issuer, audience, expiry, nonce) fails with an `OidcError` whose message says which.
"""

import time
from dataclasses import dataclass
from typing import Any

import httpx
from authlib.common.security import generate_token
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.httpx_client import AsyncOAuth2Client
from joserfc import jws, jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet

__all__ = ["OidcClient", "OidcError", "PendingSignIn"]

# Asymmetric algorithms only: an HS256 token would be "signed" with our own client secret.
_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"]
_METADATA_TTL_S = 3600.0


def _has_key(keys: KeySet, kid: str) -> bool:
    try:
        keys.get_by_kid(kid)
    except (InvalidKeyIdError, ValueError, KeyError):
        return False
    return True


class OidcError(Exception):
    """A sign-in that cannot complete; `message` is shown to the person."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class PendingSignIn:
    """What the hub remembers between sending a person to the provider and their return."""

    state: str
    nonce: str
    code_verifier: str
    next: str


class OidcClient:
    def __init__(
        self,
        *,
        issuer: str,
        client_id: str,
        client_secret: str,
        scopes: str,
        redirect_uri: str,
        leeway_s: int,
        timeout_s: float = 10.0,
    ) -> None:
        self.issuer = issuer.rstrip("/")
        self._client_id = client_id
        self._client_secret = client_secret
        self._scopes = scopes
        self._redirect_uri = redirect_uri
        self._leeway_s = leeway_s
        self._timeout_s = timeout_s
        self._metadata: dict[str, Any] | None = None
        self._metadata_at = 0.0
        self._keys: KeySet | None = None

    def _oauth(self) -> AsyncOAuth2Client:
        return AsyncOAuth2Client(
            client_id=self._client_id,
            client_secret=self._client_secret,
            scope=self._scopes,
            redirect_uri=self._redirect_uri,
            code_challenge_method="S256",
            timeout=self._timeout_s,
        )

    async def _get_json(self, url: str, what: str) -> dict[str, Any]:
        try:
            async with httpx.AsyncClient(timeout=self._timeout_s) as http:
                response = await http.get(url)
        except httpx.HTTPError as error:
            raise OidcError(
                f"The identity provider cannot be reached for its {what} ({url}): {error}."
            ) from error
        if response.status_code != 200:
            raise OidcError(
                f"The identity provider answered {response.status_code} for its {what} ({url})."
            )
        try:
            body = response.json()
        except ValueError as error:
            raise OidcError(f"The identity provider's {what} is not JSON ({url}).") from error
        if not isinstance(body, dict):
            raise OidcError(f"The identity provider's {what} is not a JSON object ({url}).")
        return body

    async def metadata(self) -> dict[str, Any]:
        """The provider's discovery document, checked to be about our issuer."""
        if self._metadata is not None and time.monotonic() - self._metadata_at < _METADATA_TTL_S:
            return self._metadata
        url = f"{self.issuer}/.well-known/openid-configuration"
        metadata = await self._get_json(url, "discovery document")
        if str(metadata.get("issuer", "")).rstrip("/") != self.issuer:
            raise OidcError(
                f"The discovery document at {url} names issuer {metadata.get('issuer')!r}, "
                f"not {self.issuer!r}; check SWITCHBOARD_OIDC_ISSUER."
            )
        for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not isinstance(metadata.get(key), str):
                raise OidcError(f"The discovery document at {url} has no {key}.")
        self._metadata, self._metadata_at = metadata, time.monotonic()
        return metadata

    async def _key_set(self, *, refresh: bool) -> KeySet:
        if self._keys is None or refresh:
            metadata = await self.metadata()
            body = await self._get_json(str(metadata["jwks_uri"]), "signing keys")
            try:
                # A key set of any shape is checked by joserfc itself (the errors below).
                self._keys = KeySet.import_key_set(body)  # type: ignore[arg-type]
            except (JoseError, ValueError, TypeError, KeyError) as error:
                raise OidcError(
                    f"The identity provider's signing keys are unusable: {error}"
                ) from error
        return self._keys

    async def begin(self, next_url: str) -> tuple[str, PendingSignIn]:
        """The provider's authorization URL to send the person to, and what to remember."""
        metadata = await self.metadata()
        pending = PendingSignIn(
            state=generate_token(32),
            nonce=generate_token(32),
            code_verifier=generate_token(64),
            next=next_url,
        )
        async with self._oauth() as oauth:
            url, _ = oauth.create_authorization_url(
                str(metadata["authorization_endpoint"]),
                state=pending.state,
                nonce=pending.nonce,
                code_verifier=pending.code_verifier,
            )
        return url, pending

    async def finish(self, *, code: str, pending: PendingSignIn) -> dict[str, Any]:
        """Exchange the code for tokens and return the checked ID token's claims."""
        metadata = await self.metadata()
        async with self._oauth() as oauth:
            try:
                token = await oauth.fetch_token(
                    str(metadata["token_endpoint"]),
                    code=code,
                    code_verifier=pending.code_verifier,
                    grant_type="authorization_code",
                )
            except OAuthError as error:
                raise OidcError(
                    "The identity provider refused the sign-in code "
                    f"({error.error}: {error.description or 'no reason given'}); it may have "
                    "been used already or expired. Sign in again."
                ) from error
            except httpx.HTTPError as error:
                raise OidcError(
                    f"The identity provider's token endpoint failed: {error}."
                ) from error
        id_token = token.get("id_token")
        if not isinstance(id_token, str):
            raise OidcError("The identity provider returned no ID token; is 'openid' a scope?")
        return await self.verify_id_token(id_token, nonce=pending.nonce)

    async def verify_id_token(self, id_token: str, *, nonce: str) -> dict[str, Any]:
        try:
            header = jws.extract_compact(id_token.encode()).headers()
        except (JoseError, ValueError) as error:
            raise OidcError(f"The ID token is malformed: {error}.") from error
        keys = await self._key_set(refresh=False)
        kid = header.get("kid")
        if isinstance(kid, str) and not _has_key(keys, kid):
            # The provider may have rotated its keys since they were fetched.
            keys = await self._key_set(refresh=True)
        try:
            decoded = jwt.decode(id_token, keys, algorithms=_ALGORITHMS)
        except InvalidKeyIdError as error:
            raise OidcError(
                f"The ID token is signed with a key ({kid!r}) that {self.issuer} does not "
                "publish; it was not issued by your identity provider."
            ) from error
        except JoseError as error:
            raise OidcError(
                f"The ID token's signature does not verify with {self.issuer}'s keys "
                f"({error.error}); it was not issued by your identity provider."
            ) from error
        claims = dict(decoded.claims)
        self._check_claims(claims, nonce=nonce)
        return claims

    def _check_claims(self, claims: dict[str, Any], *, nonce: str) -> None:
        if str(claims.get("iss", "")).rstrip("/") != self.issuer:
            raise OidcError(
                f"The ID token was issued by {claims.get('iss')!r}, not {self.issuer!r}."
            )
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if self._client_id not in audiences:
            raise OidcError(
                f"The ID token is meant for {audience!r}, not for this hub "
                f"({self._client_id!r}); check SWITCHBOARD_OIDC_CLIENT_ID."
            )
        if len(audiences) > 1 and claims.get("azp") not in (None, self._client_id):
            raise OidcError(f"The ID token was requested by {claims.get('azp')!r}, not this hub.")
        now = time.time()
        expires = claims.get("exp")
        if not isinstance(expires, int | float):
            raise OidcError("The ID token has no expiry time.")
        if expires + self._leeway_s < now:
            raise OidcError(
                f"The ID token expired {now - expires:.0f} s ago. Sign in again, and check "
                "that this machine's clock is right."
            )
        issued = claims.get("iat")
        if isinstance(issued, int | float) and issued - self._leeway_s > now:
            raise OidcError("The ID token is issued in the future; check the clocks.")
        if claims.get("nonce") != nonce:
            raise OidcError(
                "The ID token's nonce does not match this sign-in: it belongs to another "
                "sign-in or was replayed. Sign in again."
            )
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject or len(subject) > 255:
            raise OidcError("The ID token has no usable subject ('sub').")
