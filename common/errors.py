"""One error vocabulary: every refusal of a service reduces to a list of problems, each a location
(a field path such as ("env", "window"), or () for the input as a whole) and a message.

Interfaces render that list their own way in a few lines: the API a JSON body whose status comes
from a table of error classes (trademaster_web.api), a form puts each problem on its input, a page
shows a message, the admin a warning, manage.py a CommandError. A new kind of refusal is a subclass
of DomainError (and, for the API, one entry in its status table).

Django's ValidationError (bad input), PermissionDenied (visible but not yours to change), pydantic's
ValidationError (the engine's RunConfig) and the engine's DataError (a bad market-data file) are
refusals too; problems_of reads them as they are.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pydantic
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, ValidationError

from engine.data import DataError

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    loc: Loc  # () when the problem is about the input as a whole
    message: str

    def __str__(self) -> str:
        where = ".".join(str(part) for part in self.loc)
        return f"{where}: {self.message}" if where else self.message


class DomainError(Exception):
    """A refusal of the product's own: well-formed input that the state of things does not allow."""

    def problems(self) -> list[Problem]:
        return [Problem((), str(self))]


class NotFound(DomainError):
    """No such object, or none the user may see: someone else's strategy is "not found", not
    "forbidden", so ids do not reveal what exists."""


class Conflict(DomainError):
    """The input is well formed but clashes with what exists (a name already taken).

    field: the input field at fault, when there is one.
    """

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.field = field

    def problems(self) -> list[Problem]:
        return [Problem((self.field,) if self.field else (), str(self))]


def _config_problems(error: pydantic.ValidationError) -> list[Problem]:
    return [Problem(tuple(e["loc"]), e["msg"]) for e in error.errors(include_url=False)]


def _invalid_problems(error: ValidationError) -> list[Problem]:
    if not hasattr(error, "error_dict"):
        return [Problem((), message) for message in error.messages]
    return [
        Problem(() if name == NON_FIELD_ERRORS else (name,), message)
        for name, messages in error.message_dict.items()
        for message in messages
    ]


def _forbidden_problems(error: PermissionDenied) -> list[Problem]:
    return [Problem((), str(error) or "forbidden")]


def _data_problems(error: DataError) -> list[Problem]:
    # The message already names the file, line and column; they are not input fields.
    return [Problem((), str(error))]


_FOREIGN: dict[type[Exception], Callable[[Exception], list[Problem]]] = {
    pydantic.ValidationError: _config_problems,
    ValidationError: _invalid_problems,
    PermissionDenied: _forbidden_problems,
    DataError: _data_problems,
}

# Refusals of the input or of the state of things, which a person answers by asking differently: a
# form puts them on its inputs, a page shows them as a message, manage.py prints them. Not
# PermissionDenied: that is about who asks, and pages answer it with their 403 (problems_of still
# reads it, for the API and the admin).
REFUSALS: tuple[type[Exception], ...] = (DomainError, pydantic.ValidationError, ValidationError, DataError)


def problems_of(error: Exception) -> list[Problem]:
    """The problems `error` (one of REFUSALS, or PermissionDenied) stands for; TypeError for anything
    else, which is a bug."""
    if isinstance(error, DomainError):
        return error.problems()
    for cls in type(error).__mro__:
        if cls in _FOREIGN:
            return _FOREIGN[cls](error)
    raise TypeError(f"{type(error).__name__} is not a refusal: {error}")


def message_of(error: Exception) -> str:
    """The problems as one sentence for a page's message or the admin's: their messages, in order."""
    return " ".join(problem.message for problem in problems_of(error))
