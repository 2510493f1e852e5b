"""Signing in to the pages with the platform's OpenID Connect provider: the
authorisation code flow with PKCE, through Authlib's Flask client. The
provider's endpoints and keys come from discovery (OIDC_ISSUER).

- `GET /sign-in?next=/path` sends the browser to the provider's login page;
  `state`, the PKCE verifier and the nonce wait in the session cookie.
- `GET /sign-in/callback` exchanges the code (with the verifier) for tokens;
  Authlib checks the ID token (signature by the provider's JWKS, issuer,
  audience, expiry, nonce) and so does our verifier, as for any bearer token.
  The session then holds that token (sessions.start) and the browser goes back
  to `next`, which stays on this site.
- `POST /sign-out` ends the session.

Any failure (wrong or missing state, no PKCE verifier, a code the provider
refuses, as when it is replayed, a token we do not accept) is the same 401
`sign_in_failed`, saying nothing about which check failed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from urllib.parse import urlsplit

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.flask_client import FlaskOAuth2App, OAuth
from flask import Blueprint, Response, redirect, request, session, url_for
from flask.blueprints import BlueprintSetupState
from joserfc.errors import JoseError
from werkzeug.wrappers import Response as BaseResponse

from identity import sessions
from identity.auth import TokenVerifier
from identity.errors import AuthError
from identity.settings import IdentitySettings

log = logging.getLogger(__name__)

PROVIDER = "platform"
SCOPES = "openid profile email"
NEXT = "sign_in_next"


def local_path(target: str | None, default: str) -> str:
    """`target` if it is a path on this site, else `default` (never an open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.isprintable():
        return default
    return target


def same_origin_only() -> None:
    """Sign-in and sign-out forms post from this site's own pages (browsers send Origin)."""
    origin = request.headers.get("Origin")
    if origin is not None and urlsplit(origin).netloc != request.host:
        raise AuthError(403, "cross_origin", "Not allowed", "Sign in and out from this site's own pages.")


def sign_in_failed() -> AuthError:
    return AuthError(401, "sign_in_failed", "Sign-in failed",
                     "Signing in did not complete; start again from the sign-in page.")


def sign_in_unavailable() -> AuthError:
    return AuthError(503, "sign_in_unavailable", "Sign-in unavailable",
                     "Signing in is not possible right now; try again shortly.")


def sign_in_blueprint(settings: IdentitySettings, verifier: TokenVerifier, home: str,
                      answer: Callable[[AuthError], BaseResponse]) -> Blueprint:
    """The sign-in routes of an app whose main page is `home`; `answer` turns a
    problem into this app's response (a page for browsers)."""
    blp = Blueprint("sign_in", __name__)
    oauth = OAuth()

    @blp.record_once
    def _register(state: BlueprintSetupState) -> None:
        oauth.init_app(state.app)
        if settings.oidc_issuer:
            oauth.register(
                PROVIDER, client_id=settings.oidc_client_id, client_secret=settings.oidc_client_secret,
                server_metadata_url=f"{settings.oidc_issuer.rstrip('/')}/.well-known/openid-configuration",
                client_kwargs={"scope": SCOPES, "code_challenge_method": "S256", "timeout": 10})

    def client() -> FlaskOAuth2App:
        if not settings.oidc_issuer:
            raise sign_in_unavailable()
        return oauth.create_client(PROVIDER)

    @blp.errorhandler(AuthError)
    def _problem(problem: AuthError) -> BaseResponse:
        return answer(problem)

    @blp.get("/sign-in")
    def sign_in() -> BaseResponse:
        provider = client()
        session[NEXT] = local_path(request.args.get("next"), home)
        try:
            return provider.authorize_redirect(  # type: ignore[no-any-return]
                url_for("sign_in.callback", _external=True))
        except (requests.RequestException, AuthlibBaseError, ValueError) as exc:
            log.warning("the identity provider did not answer: %s", type(exc).__name__)
            raise sign_in_unavailable() from exc

    @blp.get("/sign-in/callback")
    def callback() -> BaseResponse:
        provider = client()
        # No sign-in of this browser's waits for this state, or it has no PKCE verifier.
        pending = provider.framework.get_state_data(session, request.args.get("state"))
        if not pending or not pending.get("code_verifier"):
            raise sign_in_failed()
        try:
            tokens = provider.authorize_access_token(leeway=settings.oidc_clock_skew_seconds)
        except (requests.RequestException, AuthlibBaseError, JoseError, ValueError) as exc:
            log.info("sign-in refused: %s", type(exc).__name__)
            raise sign_in_failed() from exc
        token = tokens.get("id_token")
        if not isinstance(token, str):
            raise sign_in_failed()
        try:
            verifier.verify(token)
        except AuthError as exc:
            raise sign_in_failed() from exc
        target = local_path(session.get(NEXT), home)
        sessions.start(token)
        return redirect(target, 303)

    @blp.post("/sign-out")
    def sign_out() -> Response:
        same_origin_only()  # another site must not sign anyone out either
        sessions.end()
        return redirect(home, 303)  # type: ignore[return-value]

    return blp
