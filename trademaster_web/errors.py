"""Exceptions the services and selectors of every app raise, and the API, views and commands translate.

Django's own ValidationError (bad input, with field names) and PermissionDenied (visible but not
yours to change) complete the set; the engine's DataError is a bad market-data file.
"""


class NotFound(Exception):
    """No such object, or none the user may see: someone else's strategy is "not found", not
    "forbidden", so ids do not reveal what exists."""


class Conflict(Exception):
    """The input is well formed but clashes with what exists (a name already taken).

    field: the input field at fault, when there is one.
    """

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.field = field
