"""Signing in with OpenID Connect, and the attacks on it, against a local provider:
a real `oidc-provider-mock` server for the sign-in flow and its tokens, and a
small JWKS server of our own (tokens signed with PyJWT) for what the mock can
not be made to do: sign with another key, rotate, go down, sign with `none`.

Every refusal is a 401 problem+json with a stable code and a detail that says
nothing about which check failed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask
from flask.testing import FlaskClient
from oidc_provider_mock import User, run_server_in_thread
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from devtools.devoidc import provider_token
from identity.auth import JwksCache, Principal, TokenVerifier, verifier_for
from identity.errors import AuthError
from identity.sessions import SESSION_COOKIE
from services.checkout.app import create_app
from services.common.clock import FixedClock
from services.common.config import DEV_OIDC_CLIENT_ID, DEV_OIDC_CLIENT_SECRET, Settings
from tests.conftest import _seeded, make_settings

ALICE = User(sub="1", claims={"email": "alice@acme.test", "email_verified": True, "name": "Alice Owner"})
GINA = User(sub="8", claims={"email": "gina@platform.test", "email_verified": True,
                             "groups": ["platform/growth", "somewhere/else"]})
ROLE_MAP = {"platform/growth": "growth", "platform/admins": "admin"}
JSON = {"Accept": "application/json"}
GENERIC = "The bearer token is not valid."


# --- a real oidc-provider-mock --------------------------------------------------------------
@pytest.fixture(scope="module")
def provider() -> Iterator[str]:
    with run_server_in_thread(user_claims=[ALICE, GINA]) as server:
        yield f"http://localhost:{server.server_port}"


@pytest.fixture
def oidc_app(provider: str, checkout_db_url: str, clock: FixedClock) -> Iterator[Flask]:
    settings = make_settings("checkout", checkout_db_url).with_overrides(oidc_issuer=provider,
                                                                         oidc_role_map=ROLE_MAP)
    flask_app = _seeded(create_app(settings, clock), clock)
    yield flask_app
    flask_app.extensions["checkout"].ctx.close()


def start_sign_in(client: FlaskClient, next_path: str = "/checkout") -> str:
    """Our /sign-in: the provider's authorisation URL it sends the browser to."""
    response = client.get("/sign-in", query_string={"next": next_path})
    assert response.status_code == 302
    return response.headers["Location"]


def log_in_at_provider(authorize_url: str, sub: str = "1") -> tuple[str, dict[str, str]]:
    """Press the user's button on the provider's login page: (callback path, its query)."""
    query = parse_qs(urlsplit(authorize_url).query)
    assert query["code_challenge_method"] == ["S256"] and query["code_challenge"]  # PKCE
    assert query["scope"] == ["openid profile email"] and query["nonce"]
    answer = requests.post(authorize_url, data={"sub": sub}, allow_redirects=False, timeout=10)
    assert answer.status_code == 302
    back = urlsplit(answer.headers["Location"])
    return back.path, {k: v[0] for k, v in parse_qs(back.query).items()}


def assert_refused(response: Any, code: str = "sign_in_failed") -> None:
    assert response.status_code == 401 and response.mimetype == "application/problem+json"
    assert response.json["code"] == code


def test_signing_in_through_the_provider(oidc_app: Flask) -> None:
    client = oidc_app.test_client()
    path, query = log_in_at_provider(start_sign_in(client, "/checkout?namespace_id=100"))
    assert path == "/sign-in/callback"
    back = client.get(path, query_string=query)
    assert back.status_code == 303 and back.headers["Location"] == "/checkout?namespace_id=100"
    cookie = back.headers["Set-Cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie and "Expires=" in cookie  # Secure in production only; idle lifetime
    page = client.get("/checkout")
    assert page.status_code == 200 and "Signed in as alice@acme.test" in page.get_data(as_text=True)
    # Rolling: each request sends the cookie again with a later expiry.
    assert client.get("/namespaces").headers["Set-Cookie"].startswith(f"{SESSION_COOKIE}=")
    # Signing out ends it.
    assert client.post("/sign-out", headers={"Origin": "http://localhost"}).status_code == 303
    assert client.get("/checkout").status_code == 401


def test_next_stays_on_this_site(oidc_app: Flask) -> None:
    client = oidc_app.test_client()
    path, query = log_in_at_provider(start_sign_in(client, "https://evil.test/steal"))
    assert client.get(path, query_string=query).headers["Location"] == "/checkout"


def test_a_replayed_code_is_refused(oidc_app: Flask) -> None:
    client = oidc_app.test_client()
    path, query = log_in_at_provider(start_sign_in(client))
    assert client.get(path, query_string=query).status_code == 303
    # The same code again, under a fresh sign-in of this browser (so state and PKCE verifier match):
    # the provider refuses a code it already exchanged.
    state = parse_qs(urlsplit(start_sign_in(client)).query)["state"][0]
    assert_refused(client.get(path, query_string={**query, "state": state}, headers=JSON))


def test_a_wrong_or_missing_state_is_refused(oidc_app: Flask) -> None:
    client = oidc_app.test_client()
    path, query = log_in_at_provider(start_sign_in(client))
    assert_refused(client.get(path, query_string={**query, "state": "forged"}, headers=JSON))
    assert_refused(client.get(path, query_string={"code": query["code"]}, headers=JSON))
    # Another browser (no pending sign-in in its session) can not use the callback either.
    assert_refused(oidc_app.test_client().get(path, query_string=query, headers=JSON))
    assert client.get("/checkout").status_code == 401


def test_a_sign_in_without_its_pkce_verifier_is_refused(oidc_app: Flask) -> None:
    client = oidc_app.test_client()
    path, query = log_in_at_provider(start_sign_in(client))
    with client.session_transaction() as session:
        pending = session[f"_state_platform_{query['state']}"]
        del pending["data"]["code_verifier"]
        session[f"_state_platform_{query['state']}"] = pending
    assert_refused(client.get(path, query_string=query, headers=JSON))


def test_a_failed_sign_in_reads_as_a_page_in_a_browser(oidc_app: Flask) -> None:
    response = oidc_app.test_client().get("/sign-in/callback?code=x&state=y", headers={"Accept": "text/html"})
    page = response.get_data(as_text=True)
    assert response.status_code == 401 and "Signing in did not complete" in page
    assert 'href="/sign-in?next=%2Fcheckout">Sign in</a>' in page


def test_the_api_takes_the_providers_tokens(oidc_app: Flask, provider: str) -> None:
    alice = provider_token(provider, DEV_OIDC_CLIENT_ID, DEV_OIDC_CLIENT_SECRET, "1")
    client = oidc_app.test_client()
    response = client.get("/namespaces", headers={"Authorization": f"Bearer {alice}"})
    assert response.status_code == 200 and {n["id"] for n in response.json} >= {100}
    gina = provider_token(provider, DEV_OIDC_CLIENT_ID, DEV_OIDC_CLIENT_SECRET, "8")
    assert oidc_app.extensions["token_verifier"].verify(gina) == Principal(
        8, "gina@platform.test", frozenset({"growth"}), email_verified=True)  # unmapped groups dropped


def test_a_token_for_another_client_is_refused(oidc_app: Flask, provider: str) -> None:
    theirs = provider_token(provider, "another-app", "its-secret", "1")
    response = oidc_app.test_client().get("/namespaces", headers={"Authorization": f"Bearer {theirs}"})
    assert_refused(response, "invalid_token")
    assert response.json["detail"] == GENERIC and response.headers["WWW-Authenticate"] == "Bearer"


def test_a_token_from_another_provider_is_refused(oidc_app: Flask) -> None:
    with run_server_in_thread(user_claims=[ALICE]) as other:
        theirs = provider_token(f"http://localhost:{other.server_port}", DEV_OIDC_CLIENT_ID,
                                DEV_OIDC_CLIENT_SECRET, "1")
    response = oidc_app.test_client().get("/namespaces", headers={"Authorization": f"Bearer {theirs}"})
    assert_refused(response, "invalid_token")


# --- our own JWKS server, for what the mock can not do --------------------------------------------
def new_key(kid: str) -> tuple[str, rsa.RSAPrivateKey, dict[str, Any]]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    return kid, key, {**public, "kid": kid, "use": "sig", "alg": "RS256"}


@dataclass
class KeyServer:
    """An issuer's discovery document and JWKS over HTTP; `down` makes both answer 503."""

    keys: list[dict[str, Any]] = field(default_factory=list)
    down: bool = False
    jwks_fetches: int = 0

    def __post_init__(self) -> None:
        self._server = make_server("127.0.0.1", 0, self._app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @Request.application  # type: ignore[arg-type]
    def _app(self, request: Request) -> Response:
        if self.down:
            return Response("down", 503)
        if request.path == "/jwks":
            self.jwks_fetches += 1
            return Response(json.dumps({"keys": self.keys}), mimetype="application/json")
        return Response(json.dumps({"issuer": self.url, "jwks_uri": f"{self.url}/jwks"}),
                        mimetype="application/json")

    def stop(self) -> None:
        self._server.shutdown()


@pytest.fixture
def keys() -> Iterator[KeyServer]:
    server = KeyServer()
    yield server
    server.stop()


class Ticks:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def verifier(keys: KeyServer, *, production: bool = True, ticks: Ticks | None = None) -> TokenVerifier:
    settings = Settings(service="checkout", database_url="sqlite://", oidc_issuer=keys.url,
                        oidc_role_map=ROLE_MAP, environment="production" if production else "test",
                        auth_secret="s" * 40)
    built = verifier_for(settings)
    if ticks is not None:
        assert built.discovery is not None
        built.keys = JwksCache(built.discovery.jwks_uri, monotonic=ticks)
        built.monotonic = ticks  # verified tokens are remembered on the same clock
    return built


def sign(key: rsa.RSAPrivateKey, kid: str, issuer: str, **changes: Any) -> str:
    now = datetime.now(UTC)
    claims = {"iss": issuer, "aud": DEV_OIDC_CLIENT_ID, "sub": "1", "email": "alice@acme.test",
              "email_verified": True, "iat": int(now.timestamp()),
              "exp": int((now + timedelta(minutes=5)).timestamp()), **changes}
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, key, algorithm="RS256",
                      headers={"kid": kid})


def refused(check: TokenVerifier, token: str, code: str = "invalid_token") -> None:
    with pytest.raises(AuthError) as excinfo:
        check.verify(token)
    problem = excinfo.value
    assert (problem.status, problem.code, problem.headers) == (401, code, {"WWW-Authenticate": "Bearer"})
    if code == "invalid_token":
        assert problem.detail == GENERIC


def test_a_good_token_names_the_person(keys: KeyServer) -> None:
    kid, key, public = new_key("k1")
    keys.keys = [public]
    principal = verifier(keys).verify(sign(key, kid, keys.url, groups=["platform/admins"]))
    assert principal == Principal(1, "alice@acme.test", frozenset({"admin"}), email_verified=True)
    unverified = verifier(keys).verify(sign(key, kid, keys.url, email_verified=None))
    assert unverified.email_verified is False


@pytest.mark.parametrize("changes,code", [
    ({"iss": "https://elsewhere.test"}, "invalid_token"),
    ({"aud": "another-app"}, "invalid_token"),
    ({"aud": None}, "invalid_token"),
    ({"exp": int((datetime.now(UTC) - timedelta(minutes=2)).timestamp())}, "token_expired"),
    ({"sub": "alice"}, "invalid_token"),  # our people are the platform's numeric user ids
    ({"sub": "0"}, "invalid_token"),  # the services' own subject
])
def test_bad_claims_are_refused(keys: KeyServer, changes: dict[str, Any], code: str) -> None:
    kid, key, public = new_key("k1")
    keys.keys = [public]
    refused(verifier(keys), sign(key, kid, keys.url, **changes), code)


def test_a_small_clock_skew_is_allowed(keys: KeyServer) -> None:
    kid, key, public = new_key("k1")
    keys.keys = [public]
    just_expired = int((datetime.now(UTC) - timedelta(seconds=10)).timestamp())
    assert verifier(keys).verify(sign(key, kid, keys.url, exp=just_expired)).user_id == 1


def test_alg_none_and_algorithm_confusion_are_refused(keys: KeyServer) -> None:
    kid, key, public = new_key("k1")
    keys.keys = [public]
    claims = jwt.decode(sign(key, kid, keys.url), options={"verify_signature": False})
    unsigned = jwt.encode(claims, None, algorithm="none", headers={"kid": kid})
    pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    # HS256 "signed" with the provider's public key, which anyone can fetch.
    header = jwt.utils.base64url_encode(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    body = jwt.utils.base64url_encode(json.dumps(claims).encode())
    mac = hmac.new(pem, header + b"." + body, hashlib.sha256).digest()
    confused = b".".join([header, body, jwt.utils.base64url_encode(mac)]).decode()
    for production in (True, False):
        check = verifier(keys, production=production)
        refused(check, unsigned)
        refused(check, confused)


def test_an_unknown_kid_refetches_once_and_not_again_at_once(keys: KeyServer) -> None:
    kid, key, public = new_key("k1")
    keys.keys = [public]
    ticks = Ticks()
    check = verifier(keys, ticks=ticks)
    assert check.verify(sign(key, kid, keys.url)).user_id == 1
    assert keys.jwks_fetches == 1
    stranger_kid, stranger, _ = new_key("k-unknown")
    ticks.now += 31
    refused(check, sign(stranger, stranger_kid, keys.url))
    assert keys.jwks_fetches == 2  # one refetch: the provider may have rotated
    refused(check, sign(stranger, "k-other", keys.url))
    assert keys.jwks_fetches == 2  # made-up kids can not make us hammer the provider
    # The provider rotates: a token with its new key works once the rate limit allows a refetch.
    new_kid, new, new_public = new_key("k2")
    keys.keys = [public, new_public]
    ticks.now += 31
    assert check.verify(sign(new, new_kid, keys.url)).user_id == 1
    assert check.verify(sign(key, kid, keys.url)).user_id == 1  # the old key still works
    assert keys.jwks_fetches == 3


def test_while_the_jwks_is_down_the_cached_key_works_until_it_expires(keys: KeyServer) -> None:
    kid, key, public = new_key("k1")
    keys.keys = [public]
    ticks = Ticks()
    check = verifier(keys, ticks=ticks)
    assert check.verify(sign(key, kid, keys.url)).user_id == 1
    keys.down = True
    ticks.now += 3600  # past the refresh: the refetch fails, the cached key stays
    assert check.verify(sign(key, kid, keys.url)).user_id == 1
    ticks.now += 86400  # past the longest a key is kept without the provider confirming it
    refused(check, sign(key, kid, keys.url))


def test_a_verified_token_is_taken_again_for_a_minute_at_most(keys: KeyServer) -> None:
    """Verifying is skipped for a token seen lately; a key the provider dropped
    stops its tokens once that minute is over."""
    kid, key, public = new_key("k1")
    keys.keys = [public]
    ticks = Ticks()
    check = verifier(keys, ticks=ticks)
    token = sign(key, kid, keys.url)
    assert check.verify(token).user_id == 1
    keys.keys = [new_key("k2")[2]]  # k1 rotated away; the cached key set keeps it until its refresh
    ticks.now += 30
    assert check.verify(token).user_id == 1
    ticks.now += 301  # past the minute and the key set's refresh
    refused(check, token)


def test_with_the_jwks_down_from_the_start_nothing_is_accepted(keys: KeyServer) -> None:
    kid, key, public = new_key("k1")
    keys.keys, keys.down = [public], True
    refused(verifier(keys), sign(key, kid, keys.url))


def test_a_provider_naming_no_kid_rotates_its_only_key(keys: KeyServer) -> None:
    """oidc-provider-mock signs without a `kid` and makes a new key when it restarts."""
    _, old, old_public = new_key("")
    keys.keys = [{k: v for k, v in old_public.items() if k != "kid"}]
    ticks = Ticks()
    check = verifier(keys, ticks=ticks)
    no_kid = {"iss": keys.url, "aud": DEV_OIDC_CLIENT_ID, "sub": "1",
              "exp": int((datetime.now(UTC) + timedelta(minutes=5)).timestamp())}
    assert check.verify(jwt.encode(no_kid, old, algorithm="RS256")).user_id == 1
    _, new, new_public = new_key("")
    keys.keys = [{k: v for k, v in new_public.items() if k != "kid"}]
    ticks.now += 31
    assert check.verify(jwt.encode(no_kid, new, algorithm="RS256")).user_id == 1
    ticks.now += 60  # past the minute a verified token is remembered (VERIFIED_SECONDS)
    refused(check, jwt.encode(no_kid, old, algorithm="RS256"))  # the old key is gone
