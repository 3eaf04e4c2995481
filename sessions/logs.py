"""The end of a session's log file, as the session page shows it."""
from pathlib import Path

# A log line is short; reading only the end of the file keeps a page view cheap on a long run.
LOG_TAIL_BYTES = 64 * 1024


def log_tail(path: str, *, lines: int) -> list[str] | None:
    """The last `lines` lines of the log at `path`; None when there is no such file (yet)."""
    if not path:
        return None
    file = Path(path)
    try:
        with file.open("rb") as log:
            size = log.seek(0, 2)
            log.seek(max(0, size - LOG_TAIL_BYTES))
            text = log.read().decode("utf-8", errors="replace")
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        return None
    found = text.splitlines()
    if size > LOG_TAIL_BYTES:
        found = found[1:]  # the seek may have cut the first one in the middle
    return found[-lines:]
