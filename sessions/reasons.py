"""Why a session failed, said to whoever may read it: one sentence, no server paths, no traceback."""
import re

NO_REASON = "The session stopped without saying why."

# An absolute path's directories (a file name keeps its last part): users never see the server's paths.
_PATH = re.compile(r"(?<![\w.~/:])/(?:[^\s/'\"<>:,;()\[\]]+/)+")
# "ValueError: ", "engine.data.DataError: ": a Python exception's class before its message.
_EXCEPTION = re.compile(r"^(?:[A-Za-z_]\w*\.)*[A-Z]\w*: (?=\S)")


def without_paths(text: str) -> str:
    """`text` with every absolute path cut to its last part: ".../runs/12/best.pt" -> "best.pt"."""
    return _PATH.sub("", text)


def failure_reason(error: str) -> str:
    """Why a session failed, in one sentence anyone may read: the last line of its error (a
    traceback's is the exception), without the exception's class name and without server paths. The
    traceback itself is for staff (`shows_traceback`) and the log."""
    lines = [line.strip() for line in (error or "").splitlines() if line.strip()]
    if not lines:
        return NO_REASON
    message = _EXCEPTION.sub("", lines[-1])
    # A bare value ("KeyError: 'x'") says more with its class than without.
    return without_paths(message if " " in message else lines[-1])
