"""What input can be stored: text the databases take and numbers that are numbers.

PostgreSQL refuses a NUL character in text and any text that is not valid UTF-8 (a lone surrogate
such as "\\ud800", which JSON may carry); SQLite takes the NUL and fails on the surrogate. A NaN or an
infinity in a config is no parameter a run can use, and PostgreSQL's jsonb refuses them. Each is
refused where it comes in, naming where it is.
"""
from __future__ import annotations

import math
from collections.abc import Iterator

from common.errors import Loc, Problem

NOT_FINITE = "must be a finite number"
HAS_NUL = "must not contain the NUL character"
NOT_UNICODE = "must be valid Unicode text (it holds a lone surrogate)"


def text_problem(text: str) -> str | None:
    """Why `text` cannot be stored, or None."""
    if "\x00" in text:
        return HAS_NUL
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return NOT_UNICODE
    return None


def unstorable(value: object, loc: Loc = (), *, numbers: bool = True) -> Iterator[Problem]:
    """The problems of every string (keys too) and, with `numbers`, every float inside `value`
    (JSON-like: dicts, lists, scalars) that cannot be stored, each at its path below `loc`."""
    if isinstance(value, str):
        problem = text_problem(value)
        if problem:
            yield Problem(loc, problem)
    elif isinstance(value, float):
        if numbers and not math.isfinite(value):
            yield Problem(loc, NOT_FINITE)
    elif isinstance(value, dict):
        for key, item in value.items():
            key_problem = text_problem(key) if isinstance(key, str) else None
            if key_problem:
                yield Problem((*loc, key), f"the name {key_problem}")
            yield from unstorable(item, (*loc, key), numbers=numbers)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from unstorable(item, (*loc, index), numbers=numbers)
