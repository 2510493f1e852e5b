"""Marshmallow pieces every service's API uses."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

# What `printable` refuses: the C0 controls and DEL.
_CONTROLS = [*range(32), 127]


class StrictSchema(ma.Schema):
    """Request bodies: an unknown field is an error, not silently dropped."""

    class Meta:
        unknown = ma.RAISE


class Pattern(validate.Regexp):
    """A regular expression the WHOLE value must match. The OpenAPI carries it as
    `pattern`, which JSON Schema reads as ECMAScript: write it `^...$` (no `\\Z`),
    and matching the whole value here makes Python read it the same way."""

    def __call__(self, value):  # untyped, as marshmallow's overloads (str and bytes) are
        if self.regex.fullmatch(value) is None:
            raise ma.ValidationError(self._format_error(value))
        return value


def printable(*, allow: str = "") -> Pattern:
    """A validator refusing control characters (newlines, NUL...) except those in `allow`."""
    refused = [code for code in _CONTROLS if chr(code) not in allow]
    return Pattern(f"^[^{_ranges(refused)}]*$", error="Control characters are not allowed.")


def _ranges(codes: list[int]) -> str:
    """[0, 1, 2, 5, 127] -> "\\u0000-\\u0002\\u0005\\u007f": a character class both regex dialects read."""
    spans: list[list[int]] = []
    for code in codes:
        if spans and spans[-1][1] == code - 1:
            spans[-1][1] = code
        else:
            spans.append([code, code])
    return "".join(f"\\u{a:04x}" if a == b else f"\\u{a:04x}-\\u{b:04x}" for a, b in spans)
