"""Access to the wired checkout parts from a request."""

from __future__ import annotations

from flask import current_app

from services.checkout.runtime import Checkout


def checkout() -> Checkout:
    return current_app.extensions["checkout"]  # type: ignore[no-any-return]
