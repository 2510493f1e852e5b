"""Bearer tokens for synthetic people and for the platform's hooks, signed the
way the services check them outside production (HS256 with AUTH_SECRET;
identity/auth.py; production takes only the identity provider's and
services' own tokens).

    python -m loadtests.tokens --service                          # the platform's, for its hooks
    python -m loadtests.tokens --user 900 --email ida@initech.test  # a person's

Whoever makes people for a stack must know its secret, as the platform's
sign-in does: under `make run` it is the services' development secret, which
is also the default here; elsewhere AUTH_SECRET says it.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import jwt

# The services' development default (services/common/config.py DEV_AUTH_SECRET).
DEV_AUTH_SECRET = "dev-only-auth-secret-change-me-in-production"
ISSUER = "devops-checkout"
SERVICE_ROLE = "service"  # what checkout asks of whoever sends the platform's hooks
PLATFORM_USER = (0, "platform@loadtest.invalid")


def auth_secret() -> str:
    return os.environ.get("AUTH_SECRET", DEV_AUTH_SECRET)


def sign(secret: str, user_id: int, email: str, roles: Iterable[str] = (),
         ttl: timedelta = timedelta(days=2)) -> str:
    now = datetime.now(UTC)
    claims = {"sub": str(user_id), "email": email, "roles": list(roles), "iss": ISSUER,
              "iat": int(now.timestamp()), "exp": int((now + ttl).timestamp())}
    return jwt.encode(claims, secret, algorithm="HS256")


def platform_token(secret: str, traffic: str, ttl: timedelta = timedelta(hours=1)) -> str:
    """The platform's token for its hooks; `traffic` (synthetic, demo) marks what they cause."""
    return sign(secret, *PLATFORM_USER, roles=(SERVICE_ROLE, traffic), ttl=ttl)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.tokens", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--service", action="store_true", help="the platform's token, for its system hooks")
    who.add_argument("--user", type=int, help="a person's user id")
    parser.add_argument("--email", help="the person's email (default: user<id>@example.test)")
    parser.add_argument("--role", action="append", default=[],
                        help="roles the token carries (repeatable): synthetic, demo, growth, admin")
    args = parser.parse_args(argv)
    if args.service:
        print(sign(auth_secret(), *PLATFORM_USER, roles=(SERVICE_ROLE, *args.role)))
    else:
        print(sign(auth_secret(), args.user, args.email or f"user{args.user}@example.test", args.role))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
