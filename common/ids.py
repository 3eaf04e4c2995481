"""Row ids as the databases hold them: signed 64-bit integers (PostgreSQL bigint, SQLite INTEGER).

A number from a URL, a query or a body beyond that range names no row; passed to the database it
would be an overflow error (a 500), so it is refused, or found to be nothing, before any query.
"""
MAX_ID = 2**63 - 1


def is_id(value: int) -> bool:
    """Whether `value` could be a row's id: a positive 64-bit integer."""
    return 0 < value <= MAX_ID
