"""Who is calling: bearer tokens verified (the identity provider's, other
services' Ed25519 tokens, development HS256), service tokens issued
(auth.py), the pages' session cookie with its CSRF token (sessions.py) and
the OpenID Connect sign-in routes (signin.py). A refusal is an `AuthError`
(errors.py); the settings it reads are a protocol (settings.py). It imports
nothing of this repository."""
