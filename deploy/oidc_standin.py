"""A STAND-IN identity provider for the containers (`make image-test`, `make
compose-up`): oidc-provider-mock, a runtime dependency and so in the image,
with the demo users, served over TLS because production's services take only
an https issuer. Its login page signs in whoever picks a user: never point a
real deployment's OIDC_ISSUER at it. `make run` serves the same users over
http (devtools/devoidc.py).

    python -m deploy.oidc_standin tls DIR [--host NAME ...]    cert.pem, key.pem (self-signed) and
                                                               ca-bundle.pem (certifi's roots + it)
    python -m deploy.oidc_standin serve DIR [--port 8430]     serve it with DIR's certificate
    python -m deploy.oidc_standin token SUB                   a demo user's ID token from OIDC_ISSUER
                                                               (OIDC_CLIENT_ID, OIDC_CLIENT_SECRET)
"""

from __future__ import annotations

import argparse
import base64
import datetime
import hashlib
import ipaddress
import os
import secrets
import sys
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

from services.checkout.seed import load_demo

# How demo roles reach the services: as the provider's `groups` claim, which the
# services map to platform roles (OIDC_ROLE_MAP).
DEMO_GROUPS = {"admin": "platform/admins", "support": "platform/support", "growth": "platform/growth"}
DEMO_ROLE_MAP = ",".join(f"{group}={role}" for role, group in DEMO_GROUPS.items())
# Where `provider_token` says the code goes; never fetched (the redirect is read, not followed).
TOKEN_REDIRECT = "http://127.0.0.1/make-tokens"
PORT = 8430


def demo_claims() -> list[dict[str, Any]]:
    """Each demo user as the provider knows them: `sub` is the platform's user id."""
    return [{"sub": str(u["id"]), "email": u["email"], "email_verified": True, "name": u["name"],
             "groups": [DEMO_GROUPS[r] for r in u.get("roles", ()) if r in DEMO_GROUPS]}
            for u in load_demo()["users"]]


def provider_token(issuer: str, client_id: str, client_secret: str, sub: str, timeout: float = 10.0,
                   verify: bool | str = True) -> str:
    """A demo user's ID token, got the way a browser would (code flow with PKCE),
    with the login form answered for them."""
    config = requests.get(f"{issuer}/.well-known/openid-configuration", timeout=timeout, verify=verify).json()
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    state = secrets.token_urlsafe(16)
    query = {"response_type": "code", "client_id": client_id, "redirect_uri": TOKEN_REDIRECT,
             "scope": "openid profile email", "state": state, "nonce": secrets.token_urlsafe(16),
             "code_challenge": challenge, "code_challenge_method": "S256"}
    login = requests.post(config["authorization_endpoint"], params=query, data={"sub": sub},
                          allow_redirects=False, timeout=timeout, verify=verify)
    answer = parse_qs(urlsplit(login.headers.get("Location", "")).query)
    if answer.get("state") != [state] or "code" not in answer:
        raise RuntimeError(f"the provider did not sign {sub} in (HTTP {login.status_code})")
    tokens = requests.post(config["token_endpoint"], auth=(client_id, client_secret), timeout=timeout,
                           verify=verify,
                           data={"grant_type": "authorization_code", "code": answer["code"][0],
                                 "redirect_uri": TOKEN_REDIRECT, "code_verifier": verifier})
    tokens.raise_for_status()
    return str(tokens.json()["id_token"])


def write_tls(directory: Path, hosts: list[str]) -> None:
    """A self-signed certificate for `hosts` (names or IP addresses), its key, and
    certifi's roots plus it (what the services trust, so real https still works)."""
    import certifi
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "devops-checkout stand-in identity provider")])
    now = datetime.datetime.now(datetime.UTC)
    alt: list[x509.GeneralName] = []
    for host in hosts:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            alt.append(x509.DNSName(host))
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=90))
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    pem = cert.public_bytes(serialization.Encoding.PEM)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "cert.pem").write_bytes(pem)
    (directory / "ca-bundle.pem").write_bytes(Path(certifi.where()).read_bytes() + pem)
    # Readable by the image's user (10001) from a mount: a throw-away stand-in's key.
    (directory / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    for path in directory.iterdir():
        path.chmod(0o644)


def serve(directory: Path, port: int, host: str) -> None:
    import uvicorn
    from oidc_provider_mock import app
    from oidc_provider_mock._storage import User

    users = [User(sub=claims.pop("sub"), claims=claims) for claims in demo_claims()]
    provider = app(user_claims=users)
    # oidc-provider-mock turns on Werkzeug's debugger: not in a container anyone can reach.
    provider.debug = False
    provider.wsgi_app = provider.wsgi_app.app
    uvicorn.run(provider, interface="wsgi", host=host, port=port, log_level="info",
                ssl_certfile=str(directory / "cert.pem"), ssl_keyfile=str(directory / "key.pem"))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.oidc_standin", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    tls = commands.add_parser("tls", help="write a self-signed certificate")
    tls.add_argument("directory", type=Path)
    tls.add_argument("--host", action="append", default=[], help="a name or address it is for (repeatable)")
    run = commands.add_parser("serve", help="serve the stand-in provider over TLS")
    run.add_argument("directory", type=Path)
    run.add_argument("--port", type=int, default=PORT)
    run.add_argument("--host", default="0.0.0.0")  # noqa: S104 (a container's own address)
    token = commands.add_parser("token", help="print a demo user's ID token")
    token.add_argument("sub", help="the demo user's id")
    args = parser.parse_args(argv)
    if args.command == "tls":
        write_tls(args.directory, args.host or ["localhost", "127.0.0.1"])
    elif args.command == "serve":
        serve(args.directory, args.port, args.host)
    else:
        print(provider_token(os.environ["OIDC_ISSUER"].rstrip("/"), os.environ["OIDC_CLIENT_ID"],
                             os.environ["OIDC_CLIENT_SECRET"], args.sub))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
