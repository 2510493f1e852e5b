"""Who is calling: bearer tokens, verified.

Three kinds of signed token are accepted, told apart by their algorithm:

- the identity provider's (OpenID Connect): RS256/ES256 JWTs checked against
  the provider's JWKS (found by discovery from the issuer URL) for signature,
  issuer, audience and expiry, with a small clock skew. People's identity comes
  from `sub`, `email` and `email_verified`; platform roles (admin, support,
  growth) from a groups or roles claim mapped in configuration.
- another service's (EdDSA): short-lived, signed with that service's own key,
  for one callee (`aud`); it carries the `service` role and never more.
- development and tests only (HS256 with AUTH_SECRET): `issue_token` mints
  them; production refuses them.

What a person may do with a namespace (Owner, Maintainer...) is not in any
token: the service that owns namespaces (checkout) holds it.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_pem_public_key

from identity.errors import AuthError
from identity.settings import IdentitySettings

log = logging.getLogger(__name__)

ALGORITHM = "HS256"
ISSUER = "devops-checkout"
CHALLENGE = {"WWW-Authenticate": "Bearer"}
# What a provider may sign with; never HS* (its public key is no secret) nor "none".
PROVIDER_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "ES256", "ES384")
SERVICE_ALGORITHM = "EdDSA"
SERVICE_ISSUER_PREFIX = "service:"
SERVICE_ROLE = "service"
# What a platform role in configuration may name; anything else is dropped.
PLATFORM_ROLES = frozenset({"admin", "support", "growth"})
# What a service token may add to `service`: the traffic source of what it causes.
SERVICE_EXTRA_ROLES = frozenset({"synthetic", "demo"})
SERVICE_TOKEN_TTL = timedelta(minutes=5)
VERIFIED_SECONDS = 60.0  # how long a verified token is taken without checking it again
VERIFIED_CACHE_SIZE = 10_000


@dataclass(frozen=True)
class Principal:
    user_id: int
    email: str
    roles: frozenset[str] = frozenset()
    email_verified: bool = False
    service: str | None = None  # the service whose own key signed the token (service tokens)

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles


def verified_email_matches(principal: Principal, address: str) -> bool:
    """Whether the provider vouched that this person holds `address`: what accepting
    an invitation sent to an address (a billing manager's) must check. An email
    claim the provider did not verify proves nothing."""
    email, wanted = principal.email.strip().casefold(), address.strip().casefold()
    return principal.email_verified and bool(email) and email == wanted


def invalid_token() -> AuthError:
    """The one answer to a token we do not accept: nothing says which check failed."""
    return AuthError(401, "invalid_token", "Invalid token", "The bearer token is not valid.",
                     headers=CHALLENGE)


def token_expired() -> AuthError:
    return AuthError(401, "token_expired", "Token expired",
                     "The bearer token has expired; ask for a new one.", headers=CHALLENGE)


def _decode(token: str, key: Any, algorithms: list[str], **options: Any) -> dict[str, Any]:
    try:
        return jwt.decode(token, key, algorithms=algorithms, **options)
    except jwt.ExpiredSignatureError as exc:
        raise token_expired() from exc
    except jwt.PyJWTError as exc:
        raise invalid_token() from exc


def _user_id(claims: Mapping[str, Any]) -> int:
    try:
        user_id = int(claims["sub"])
    except (TypeError, ValueError, KeyError) as exc:
        raise invalid_token() from exc
    if user_id <= 0:
        raise invalid_token()  # 0 is the services' subject, never a person's
    return user_id


# --- development and tests: HS256 with the shared secret ------------------------------
def issue_token(secret: str, user_id: int, email: str, roles: tuple[str, ...] = (),
                *, now: datetime, ttl: timedelta = timedelta(days=30)) -> str:
    claims = {
        "sub": str(user_id), "email": email, "email_verified": True, "roles": list(roles), "iss": ISSUER,
        "iat": int(now.timestamp()), "exp": int((now + ttl).timestamp()),
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify_token(secret: str, token: str) -> Principal:
    """A development token (HS256): never accepted in production (see TokenVerifier)."""
    claims = _decode(token, secret, [ALGORITHM], issuer=ISSUER, options={"require": ["sub", "exp", "iss"]})
    try:
        user_id = int(claims["sub"])
    except (TypeError, ValueError) as exc:
        raise invalid_token() from exc
    roles = claims.get("roles") or []
    return Principal(user_id=user_id, email=str(claims.get("email", "")),
                     roles=frozenset(r for r in roles if isinstance(r, str)),
                     email_verified=claims.get("email_verified", True) is True)


def bearer_token(header: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header (not yet verified)."""
    if not header:
        raise AuthError(401, "unauthenticated", "Authentication required",
                        "Send 'Authorization: Bearer <token>'.", headers=CHALLENGE)
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError(401, "invalid_token", "Invalid token",
                        "The Authorization header must be 'Bearer <token>'.", headers=CHALLENGE)
    return token.strip()


# --- the identity provider's keys -----------------------------------------------------
class JwksCache:
    """The provider's signing keys by `kid`, fetched from its JWKS and cached.

    Keys are refetched after `refresh_seconds`; a `kid` we do not know (the
    provider rotated) refetches at once, but at most once per
    `min_refetch_seconds`, so a stream of made-up kids can not hammer the
    provider. While the JWKS endpoint is down, the keys last fetched keep
    working for `max_stale_seconds`.
    """

    def __init__(self, jwks_uri: Callable[[], str], *, refresh_seconds: float = 300.0,
                 min_refetch_seconds: float = 30.0, max_stale_seconds: float = 86400.0,
                 timeout: float = 5.0, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._jwks_uri = jwks_uri
        self.refresh_seconds, self.min_refetch_seconds = refresh_seconds, min_refetch_seconds
        self.max_stale_seconds, self.timeout = max_stale_seconds, timeout
        self._now = monotonic
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None  # when the keys we hold were fetched
        self._tried_at: float | None = None  # the last attempt, successful or not
        self._lock = threading.Lock()

    def key(self, kid: str | None) -> jwt.PyJWK | None:
        """The key named `kid`; for a token naming none, the provider's only key."""
        with self._lock:
            now = self._now()
            if self._fetched_at is None or now - self._fetched_at >= self.refresh_seconds \
                    or (kid is not None and kid not in self._keys):
                self._refetch(now)
            if self._fetched_at is None or now - self._fetched_at >= self.max_stale_seconds:
                return None
            if kid is None:
                return next(iter(self._keys.values())) if len(self._keys) == 1 else None
            return self._keys.get(kid)

    def refetch(self) -> None:
        """Fetch again now (rate-limited like an unknown kid): a token that names no
        key failed with the one we hold, so the provider may have rotated it."""
        with self._lock:
            self._refetch(self._now())

    def _refetch(self, now: float) -> None:
        if self._tried_at is not None and now - self._tried_at < self.min_refetch_seconds:
            return
        self._tried_at = now
        try:
            response = requests.get(self._jwks_uri(), timeout=self.timeout)
            response.raise_for_status()
            keys = jwt.PyJWKSet.from_dict(response.json()).keys
        except (requests.RequestException, ValueError, jwt.PyJWTError) as exc:
            log.warning("JWKS fetch failed (%s); keeping the keys fetched before", type(exc).__name__)
            return
        self._keys = {key.key_id or "": key for key in keys}
        self._fetched_at = now


class Discovery:
    """The provider's metadata (`/.well-known/openid-configuration`), fetched once."""

    def __init__(self, issuer: str, timeout: float = 5.0) -> None:
        self.issuer = issuer.rstrip("/")
        self.timeout = timeout
        self._metadata: dict[str, Any] | None = None

    @property
    def url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    def metadata(self) -> dict[str, Any]:
        if self._metadata is None:
            response = requests.get(self.url, timeout=self.timeout)
            response.raise_for_status()
            metadata = response.json()
            if str(metadata.get("issuer", "")).rstrip("/") != self.issuer:
                raise ValueError("the provider's metadata names another issuer")
            self._metadata = metadata
        return self._metadata

    def jwks_uri(self) -> str:
        return str(self.metadata()["jwks_uri"])


def map_roles(claim: object, role_map: Mapping[str, str]) -> frozenset[str]:
    """The platform roles of the provider's groups/roles claim (a list, or one string)."""
    values = [claim] if isinstance(claim, str) else claim if isinstance(claim, list) else []
    return frozenset(role_map[v] for v in values
                     if isinstance(v, str) and role_map.get(v) in PLATFORM_ROLES)


def parse_role_map(text: str) -> dict[str, str]:
    """`group=role,group=role` (OIDC_ROLE_MAP); a role outside PLATFORM_ROLES is an error."""
    mapping: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        group, sep, role = item.rpartition("=")
        if not sep or not group.strip() or role.strip() not in PLATFORM_ROLES:
            raise ValueError(f"OIDC_ROLE_MAP: {item!r} is not 'group=admin|support|growth'")
        mapping[group.strip()] = role.strip()
    return mapping


# --- services' own keys ------------------------------------------------------------------
def generate_service_key() -> str:
    """A new Ed25519 private key as PEM (for SERVICE_KEY)."""
    from cryptography.hazmat.primitives import serialization

    key = Ed25519PrivateKey.generate()
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def public_key_pem(private_pem: str) -> str:
    from cryptography.hazmat.primitives import serialization

    key = load_pem_private_key(private_pem.encode(), password=None)
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def issue_service_token(private_pem: str, service: str, audience: str, *, now: datetime,
                        roles: Iterable[str] = (), ttl: timedelta = SERVICE_TOKEN_TTL) -> str:
    """What `service` shows `audience`: signed with its own key, valid minutes."""
    key = load_pem_private_key(private_pem.encode(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("SERVICE_KEY must be an Ed25519 private key")
    claims = {"iss": SERVICE_ISSUER_PREFIX + service, "sub": SERVICE_ISSUER_PREFIX + service,
              "aud": audience, "roles": [SERVICE_ROLE, *roles], "iat": int(now.timestamp()),
              "exp": int((now + ttl).timestamp())}
    return jwt.encode(claims, key, algorithm=SERVICE_ALGORITHM)


def load_public_keys(text: str) -> dict[str, Ed25519PublicKey]:
    """SERVICE_PUBLIC_KEYS: a JSON object of service name → Ed25519 public key (PEM)."""
    keys: dict[str, Ed25519PublicKey] = {}
    for name, pem in (json.loads(text) if text.strip() else {}).items():
        key = load_pem_public_key(str(pem).encode())
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError(f"SERVICE_PUBLIC_KEYS: {name}'s key is not Ed25519")
        keys[str(name)] = key
    return keys


# --- the verifier every service uses ---------------------------------------------------------
@dataclass
class TokenVerifier:
    """Checks a bearer token of any accepted kind and says who sent it."""

    audience: list[str]  # what a provider token may be for: the client id, and OIDC_AUDIENCE if set
    service: str  # this service: what another service's token must be for
    discovery: Discovery | None = None
    keys: JwksCache | None = None
    role_map: Mapping[str, str] | None = None
    roles_claim: str = "groups"
    leeway_seconds: int = 30
    dev_secret: str | None = None  # HS256; None in production
    service_keys: Mapping[str, Ed25519PublicKey] | None = None
    # Tokens verified lately: {token: (who, until)}. A client sends the same token
    # with every request, and verifying it (parsing twice, a signature) was a tenth
    # of a quote's time (benchmarks/results/profiles/quote.txt). An entry lasts
    # VERIFIED_SECONDS at most and never past the token's own expiry; a key removed
    # from the provider's JWKS stops its tokens within that time.
    _verified: dict[str, tuple[Principal, float]] = field(default_factory=dict, repr=False)
    monotonic: Callable[[], float] = time.monotonic  # the cache's clock (tests move it)

    def verify(self, token: str) -> Principal:
        known = self._verified.get(token)
        now = self.monotonic()
        if known is not None and now < known[1]:
            return known[0]
        principal = self._verify(token)
        if len(self._verified) >= VERIFIED_CACHE_SIZE:
            self._verified.clear()  # crude, and rare: more live tokens than this in minutes
        expires = jwt.decode(token, options={"verify_signature": False}).get("exp")
        if isinstance(expires, int | float):
            left = min(VERIFIED_SECONDS, float(expires) - time.time())
            self._verified[token] = (principal, now + left)
        return principal

    def _verify(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise invalid_token() from exc
        algorithm = header.get("alg")
        if algorithm == ALGORITHM and self.dev_secret:
            return verify_token(self.dev_secret, token)
        if algorithm == SERVICE_ALGORITHM:
            return self._service(token)
        if algorithm in PROVIDER_ALGORITHMS and self.keys is not None and self.discovery is not None:
            return self._provider(token, header.get("kid"), str(algorithm))
        raise invalid_token()  # "none", HS256 in production, anything unknown

    def _provider(self, token: str, kid: object, algorithm: str) -> Principal:
        assert self.keys is not None and self.discovery is not None
        if kid is not None and not isinstance(kid, str):
            raise invalid_token()
        try:
            claims = self._provider_claims(token, kid, algorithm)
        except jwt.InvalidSignatureError:
            if kid is not None:
                raise invalid_token() from None
            self.keys.refetch()  # a provider that names no keys may have rotated its only one
            try:
                claims = self._provider_claims(token, kid, algorithm)
            except jwt.InvalidSignatureError as exc:
                raise invalid_token() from exc
        return Principal(user_id=_user_id(claims), email=str(claims.get("email") or ""),
                         email_verified=claims.get("email_verified") is True,
                         roles=map_roles(claims.get(self.roles_claim), self.role_map or {}))

    def _provider_claims(self, token: str, kid: str | None, algorithm: str) -> dict[str, Any]:
        """The verified claims; InvalidSignatureError is left to the caller."""
        assert self.keys is not None and self.discovery is not None
        key = self.keys.key(kid)
        if key is None:
            raise invalid_token()
        # PyJWT verifies with the key's own algorithm and refuses a header naming another.
        try:
            return jwt.decode(token, key, algorithms=[algorithm], audience=self.audience,
                              issuer=self.discovery.issuer, leeway=self.leeway_seconds,
                              options={"require": ["sub", "exp", "iss", "aud"]})
        except jwt.InvalidSignatureError:
            raise
        except jwt.ExpiredSignatureError as exc:
            raise token_expired() from exc
        except jwt.PyJWTError as exc:
            raise invalid_token() from exc

    def _service(self, token: str) -> Principal:
        try:
            issuer = str(jwt.decode(token, options={"verify_signature": False}).get("iss", ""))
        except jwt.PyJWTError as exc:
            raise invalid_token() from exc
        name = issuer.removeprefix(SERVICE_ISSUER_PREFIX)
        key = (self.service_keys or {}).get(name) if issuer.startswith(SERVICE_ISSUER_PREFIX) else None
        if key is None:
            raise invalid_token()
        claims = _decode(token, key, [SERVICE_ALGORITHM], audience=self.service, issuer=issuer,
                         leeway=self.leeway_seconds, options={"require": ["exp", "iss", "aud"]})
        claimed = claims.get("roles")
        extra = set(claimed) if isinstance(claimed, list) else set()
        # A service's own key vouches for nothing but `service` (and a traffic source): never admin.
        return Principal(user_id=0, email=f"{name}@services.internal",
                         roles=frozenset({SERVICE_ROLE}) | (SERVICE_EXTRA_ROLES & extra), service=name)


def verifier_for(settings: IdentitySettings) -> TokenVerifier:
    """The verifier a service (`settings.service`) builds once, at start."""
    discovery = Discovery(settings.oidc_issuer) if settings.oidc_issuer else None
    audiences = [settings.oidc_client_id, *([settings.oidc_audience] if settings.oidc_audience else [])]
    keys = JwksCache(discovery.jwks_uri, refresh_seconds=settings.jwks_cache_seconds) if discovery else None
    return TokenVerifier(
        audience=audiences, service=settings.service, discovery=discovery, keys=keys,
        role_map=settings.oidc_role_map, roles_claim=settings.oidc_roles_claim,
        leeway_seconds=settings.oidc_clock_skew_seconds,
        dev_secret=None if settings.is_production else settings.auth_secret,
        service_keys=load_public_keys(settings.service_public_keys))


def service_token(settings: IdentitySettings, audience: str) -> str:
    """What this service shows `audience` (another service): signed with its own
    SERVICE_KEY; in development and tests without one, HS256 with AUTH_SECRET."""
    now = datetime.now(UTC)
    if settings.service_key:
        return issue_service_token(settings.service_key, settings.service, audience, now=now)
    if settings.is_production:
        raise RuntimeError("SERVICE_KEY must be set in production to call another service")
    return issue_token(settings.auth_secret, 0, f"{settings.service}@services.internal", (SERVICE_ROLE,),
                       now=now, ttl=SERVICE_TOKEN_TTL)
