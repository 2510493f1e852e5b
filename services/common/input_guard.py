"""What a request may carry before any handler, schema or authentication reads it.

Every JSON body (chunked or not) is parsed once here and refused with a
problem whose `code` says why: not JSON, nested deeper than anyone needs,
integers longer than any field takes, or text no database can store (NUL, an
unpaired UTF-16 surrogate such as the JSON escape `\\ud800`). Query strings
get the text check too. Without this, those requests would reach Python's
own limits (recursion, the 4,300-digit int conversion) or the database, and
end as a 500.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from services.common.problems import Problem

# Deeper than any body of this API (an event envelope is about 5 levels).
MAX_JSON_DEPTH = 32
# A 64-bit id has 19 digits; no field takes more, and Python's own limit is 4,300.
MAX_INTEGER_DIGITS = 32


class _IntegerTooLong(Exception):
    pass


def check_query(pairs: Iterable[tuple[str, str]]) -> Problem | None:
    for key, value in pairs:
        if (problem := _text_problem(key)) or (problem := _text_problem(value)):
            return problem
    return None


def check_json_body(body: bytes, is_json: bool) -> Problem | None:
    """A problem for a body no handler should see, None for an acceptable one."""
    if not body:
        return None
    if not is_json:
        return Problem(415, "unsupported_media_type", "Unsupported media type",
                       "Send the body as JSON with 'Content-Type: application/json'.")
    try:
        document = json.loads(body, parse_int=_integer)
    except RecursionError:
        return _too_deep()
    except _IntegerTooLong:
        return Problem(422, "number_too_large", "Number too large",
                       f"Integers in the body may have at most {MAX_INTEGER_DIGITS} digits.")
    except ValueError:  # not JSON, or not UTF-8
        return malformed_json()
    return _walk(document)


def malformed_json() -> Problem:
    return Problem(400, "malformed_json", "Malformed JSON", "The request body is not valid JSON.")


def _integer(digits: str) -> int:
    if len(digits.lstrip("-")) > MAX_INTEGER_DIGITS:
        raise _IntegerTooLong
    return int(digits)


def _walk(document: Any) -> Problem | None:
    """Depth and text of every value, without recursion (the document may be deep)."""
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            if problem := _text_problem(value):
                return problem
        elif isinstance(value, dict | list):
            if depth > MAX_JSON_DEPTH:
                return _too_deep()
            if isinstance(value, dict):
                stack.extend((key, depth) for key in value)
                value = value.values()
            stack.extend((item, depth + 1) for item in value)
    return None


def _text_problem(text: str) -> Problem | None:
    if "\x00" in text:
        return _invalid_text("Text may not contain NUL characters.")
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # only an unpaired surrogate can fail
            return _invalid_text("Text may not contain unpaired UTF-16 surrogates (such as \\ud800).")
    return None


def _invalid_text(detail: str) -> Problem:
    return Problem(422, "invalid_text", "Text that can not be stored", detail)


def _too_deep() -> Problem:
    return Problem(400, "json_too_deep", "JSON nested too deeply",
                   f"The body may nest arrays and objects at most {MAX_JSON_DEPTH} levels deep.")
