"""The local identity provider `make run` starts: `oidc-provider-mock` (PyPI), a
real OpenID Connect provider (discovery, JWKS, the authorisation code flow)
that knows the demo users. Its login page lists them by user id (`sub`): pick
1 for Alice and continue. It takes any client id and secret, and keeps its
state (and its signing key) in memory only.

    python -m devtools.devoidc          # serve on OIDC_PORT (8430 + PORT_OFFSET)

`provider_token` signs a demo user in without a browser, for `make tokens`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import sys
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

from services.checkout.seed import load_demo
from services.common.config import port_for

# How demo roles reach the services: as the provider's `groups` claim, which the
# services map to platform roles (OIDC_ROLE_MAP; `make run` sets this map).
DEMO_GROUPS = {"admin": "platform/admins", "support": "platform/support", "growth": "platform/growth"}
DEMO_ROLE_MAP = ",".join(f"{group}={role}" for role, group in DEMO_GROUPS.items())
# Where `provider_token` says the code goes; never fetched (the redirect is read, not followed).
TOKEN_REDIRECT = "http://127.0.0.1/make-tokens"


def demo_claims() -> list[dict[str, Any]]:
    """Each demo user as the provider knows them: `sub` is the platform's user id."""
    return [{"sub": str(u["id"]), "email": u["email"], "email_verified": True, "name": u["name"],
             "groups": [DEMO_GROUPS[r] for r in u.get("roles", ()) if r in DEMO_GROUPS]}
            for u in load_demo()["users"]]


def provider_token(issuer: str, client_id: str, client_secret: str, sub: str, timeout: float = 10.0) -> str:
    """A demo user's ID token, got the way a browser would (code flow with PKCE),
    with the login form answered for them."""
    config = requests.get(f"{issuer}/.well-known/openid-configuration", timeout=timeout).json()
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    state = secrets.token_urlsafe(16)
    query = {"response_type": "code", "client_id": client_id, "redirect_uri": TOKEN_REDIRECT,
             "scope": "openid profile email", "state": state, "nonce": secrets.token_urlsafe(16),
             "code_challenge": challenge, "code_challenge_method": "S256"}
    login = requests.post(config["authorization_endpoint"], params=query, data={"sub": sub},
                          allow_redirects=False, timeout=timeout)
    answer = parse_qs(urlsplit(login.headers.get("Location", "")).query)
    if answer.get("state") != [state] or "code" not in answer:
        raise RuntimeError(f"the provider did not sign {sub} in (HTTP {login.status_code})")
    tokens = requests.post(config["token_endpoint"], auth=(client_id, client_secret), timeout=timeout,
                           data={"grant_type": "authorization_code", "code": answer["code"][0],
                                 "redirect_uri": TOKEN_REDIRECT, "code_verifier": verifier})
    tokens.raise_for_status()
    return str(tokens.json()["id_token"])


def main(argv: list[str]) -> int:
    from oidc_provider_mock.__main__ import run

    users = [arg for claims in demo_claims() for arg in ("--user-claims", json.dumps(claims))]
    run.main(["--port", str(port_for("oidc")), "--host", "127.0.0.1", *users, *argv],
             prog_name="devoidc", standalone_mode=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
