"""The local identity provider `make run` starts: `oidc-provider-mock` (PyPI), a
real OpenID Connect provider (discovery, JWKS, the authorisation code flow)
that knows the demo users. Its login page lists them by user id (`sub`): pick
1 for Alice and continue. It takes any client id and secret, and keeps its
state (and its signing key) in memory only.

    python -m devtools.devoidc          # serve on OIDC_PORT (8430 + PORT_OFFSET)

`provider_token` signs a demo user in without a browser, for `make tokens`.
"""

from __future__ import annotations

import json
import sys

from deploy.oidc_standin import DEMO_ROLE_MAP, demo_claims, provider_token
from services.common.config import port_for

# The demo users, their groups and the code flow are the containers' stand-in's
# (deploy/oidc_standin.py), which serves them over TLS.
__all__ = ["DEMO_ROLE_MAP", "demo_claims", "provider_token"]


def main(argv: list[str]) -> int:
    from oidc_provider_mock.__main__ import run

    users = [arg for claims in demo_claims() for arg in ("--user-claims", json.dumps(claims))]
    run.main(["--port", str(port_for("oidc")), "--host", "127.0.0.1", *users, *argv],
             prog_name="devoidc", standalone_mode=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
