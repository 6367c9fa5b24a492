"""Input checks shared by the API and the admin: what a JSON value must be for the database (and
the code behind it) to take it."""

import re

#: How deeply arrays and objects may nest in a request. Nothing CELAEST reads goes past a few
#: levels (a JSON schema in ``response_format`` or a tool's parameters, ten at most); the limit
#: keeps every walk over a value (validation, redaction, the audit diff, jsonb) far from Python's
#: recursion limit, which a 832-byte body of 400 nested arrays used to reach.
JSON_MAX_DEPTH = 64

#: U+0000 (PostgreSQL stores it neither in text nor in jsonb) and the UTF-16 surrogates, which
#: JSON can spell (``"\udfff"``) but UTF-8 cannot encode: either, stored or sent on, is an error
#: far from the request that brought it.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def text_problem(value: str) -> str | None:
    """Why this text cannot be stored, or None."""
    found = _UNSTORABLE.search(value)
    if found is None:
        return None
    if found.group() == "\x00":
        return "Text cannot contain the NUL character (\\u0000)."
    return "Text cannot contain a lone UTF-16 surrogate (\\ud800-\\udfff)."


def json_problem(value, *, max_depth: int = JSON_MAX_DEPTH) -> str | None:
    """Why this JSON-like value cannot be taken, or None: nested deeper than ``max_depth``, or a
    key or string that ``text_problem`` refuses. Walked without recursion, so no depth can make
    the check itself fail."""
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, str):
            problem = text_problem(item)
            if problem:
                return problem
        elif isinstance(item, dict | list | tuple):
            if depth > max_depth:
                return f"JSON cannot nest arrays and objects more than {max_depth} levels deep."
            if isinstance(item, dict):
                for key, child in item.items():
                    if isinstance(key, str) and (problem := text_problem(key)):
                        return problem
                    pending.append((child, depth + 1))
            else:
                pending.extend((child, depth + 1) for child in item)
    return None
