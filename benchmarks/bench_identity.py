"""The benchmark's identity provider: production's services take only a
provider's tokens (identity/auth.py), so the benchmark serves what a
provider publishes, discovery and JWKS over https, and signs its synthetic
people's tokens with the matching RS256 key (what most providers sign with).
The services verify them exactly as in production: signature by the JWKS key,
issuer, audience, expiry.

Only the two documents are served: nobody signs in interactively during a
benchmark, and nothing here is ever deployed.
"""

from __future__ import annotations

import json
import secrets
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from deploy.oidc_standin import write_tls

CLIENT_ID = "bench-checkout"
KID = "bench-1"


class BenchProvider:
    def __init__(self, workdir: Path, port: int) -> None:
        self.url = f"https://127.0.0.1:{port}"
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.tls = workdir / "bench-provider-tls"
        write_tls(self.tls, ["127.0.0.1"])
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self._key.public_key()))
        documents = {
            "/.well-known/openid-configuration": {
                "issuer": self.url, "jwks_uri": f"{self.url}/jwks",
                "authorization_endpoint": f"{self.url}/authorize", "token_endpoint": f"{self.url}/token",
                "response_types_supported": ["code"], "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"]},
            "/jwks": {"keys": [{**jwk, "kid": KID, "use": "sig", "alg": "RS256"}]},
        }

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                body = documents.get(self.path.split("?", 1)[0])
                data = json.dumps(body).encode() if body is not None else b"{}"
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.tls / "cert.pem", self.tls / "key.pem")
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def env(self) -> dict[str, str]:
        """What the services need to trust this provider (production settings)."""
        return {"OIDC_ISSUER": self.url, "OIDC_CLIENT_ID": CLIENT_ID,
                "OIDC_CLIENT_SECRET": secrets.token_hex(16),
                "REQUESTS_CA_BUNDLE": str(self.tls / "ca-bundle.pem")}

    def token(self, user_id: int, email: str, ttl_seconds: int = 2 * 86400) -> str:
        now = int(time.time())
        claims = {"iss": self.url, "sub": str(user_id), "aud": CLIENT_ID, "email": email,
                  "email_verified": True, "iat": now, "exp": now + ttl_seconds}
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": KID})

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
