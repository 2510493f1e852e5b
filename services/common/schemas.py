"""Marshmallow pieces every service's API uses."""

from __future__ import annotations

from collections.abc import Callable

import marshmallow as ma


class StrictSchema(ma.Schema):
    """Request bodies: an unknown field is an error, not silently dropped."""

    class Meta:
        unknown = ma.RAISE


def printable(*, allow: str = "") -> Callable[[str], None]:
    """A validator refusing control characters (newlines, NUL...) except those in `allow`."""

    def check(value: str) -> None:
        if any((ord(ch) < 32 or ord(ch) == 127) and ch not in allow for ch in value):
            raise ma.ValidationError("Control characters are not allowed.")

    return check
