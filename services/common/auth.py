"""Authentication by signed bearer tokens (HS256 JWT: user id, email, roles).

Tokens say who a person is; what they may do with a namespace (Owner,
Maintainer, Developer...) is held in the database of the service that owns
namespaces (checkout). `python -m services.common.tokens` prints demo tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt

from services.common.problems import Problem

ALGORITHM = "HS256"
ISSUER = "devops-checkout"
CHALLENGE = {"WWW-Authenticate": "Bearer"}


@dataclass(frozen=True)
class Principal:
    user_id: int
    email: str
    roles: frozenset[str] = frozenset()

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles


def issue_token(secret: str, user_id: int, email: str, roles: tuple[str, ...] = (),
                *, now: datetime, ttl: timedelta = timedelta(days=30)) -> str:
    claims = {
        "sub": str(user_id), "email": email, "roles": list(roles), "iss": ISSUER,
        "iat": int(now.timestamp()), "exp": int((now + ttl).timestamp()),
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify_token(secret: str, token: str) -> Principal:
    try:
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM], issuer=ISSUER,
                            options={"require": ["sub", "exp", "iss"]})
    except jwt.ExpiredSignatureError as exc:
        raise Problem(401, "token_expired", "Token expired",
                      "The bearer token has expired; ask for a new one.",
                      headers=CHALLENGE) from exc
    except jwt.PyJWTError as exc:
        raise Problem(401, "invalid_token", "Invalid token",
                      "The bearer token is not valid.", headers=CHALLENGE) from exc
    try:
        user_id = int(claims["sub"])
    except (TypeError, ValueError) as exc:
        raise Problem(401, "invalid_token", "Invalid token", "The token's subject is not a user id.",
                      headers=CHALLENGE) from exc
    roles = claims.get("roles") or []
    return Principal(user_id=user_id, email=str(claims.get("email", "")),
                     roles=frozenset(r for r in roles if isinstance(r, str)))


def bearer_token(header: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header (not yet verified)."""
    if not header:
        raise Problem(401, "unauthenticated", "Authentication required",
                      "Send 'Authorization: Bearer <token>'.",
                      headers=CHALLENGE)
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Problem(401, "invalid_token", "Invalid token",
                      "The Authorization header must be 'Bearer <token>'.",
                      headers=CHALLENGE)
    return token.strip()


def principal_from_header(secret: str, header: str | None) -> Principal:
    return verify_token(secret, bearer_token(header))
