"""The one exception of engine.data: bad market data, located to file, line and column."""
from __future__ import annotations

from pathlib import Path


class DataError(ValueError):
    """Market data that cannot be used, with where it went wrong.

    file: the path as given (the message shows its name only), or None when no file is involved.
    line: 1-based line number in the file (the header is line 1, the first data row line 2), or None
        when the problem is not one row (a missing column, a ticker absent on some dates).
    column: the column as spelled in the file, or None.
    problem: the message without its location prefix.

    str(error) reads like "dj30.csv line 17, column 'close': price must be > 0, got -3.5".
    """

    def __init__(self, problem: str, *, file=None, line: int | None = None, column: str | None = None):
        self.problem = problem
        self.file = None if file is None else str(file)
        self.line = line
        self.column = column
        super().__init__(self._format())

    def _format(self) -> str:
        where = []
        if self.file is not None:
            where.append(Path(self.file).name + (f" line {self.line}" if self.line is not None else ""))
        elif self.line is not None:
            where.append(f"line {self.line}")
        if self.column is not None:
            where.append(f"column {self.column!r}")
        return f"{', '.join(where)}: {self.problem}" if where else self.problem

    def located(self, *, file=None, line: int | None = None, column: str | None = None) -> "DataError":
        """A copy with the missing parts of the location filled in (what is already known wins)."""
        return DataError(
            self.problem,
            file=self.file if self.file is not None else file,
            line=self.line if self.line is not None else line,
            column=self.column if self.column is not None else column,
        )
