"""How manage.py says a refusal: one CommandError (exit status 1, the text on stderr)."""
from __future__ import annotations

import pydantic
from django.core.management.base import CommandError

from common.errors import problems_of

INVALID_CONFIG = "{label}: invalid config"


def refused(error: Exception, *, label: object = None) -> CommandError:
    """`error` (a refusal, see common.errors) as a CommandError, each problem with its field path.

    A run config's problems come one per line under "<label>: invalid config", since a config file
    can have many; anything else is one line, "<label>: <field>: <message>; ...".
    """
    problems = problems_of(error)
    if isinstance(error, pydantic.ValidationError):
        lines = [INVALID_CONFIG.format(label=label)]
        lines += [f"  {'.'.join(map(str, p.loc)) or '(root)'}: {p.message}" for p in problems]
        return CommandError("\n".join(lines))
    text = "; ".join(str(p) for p in problems)
    return CommandError(f"{label}: {text}" if label is not None else text)
