"""What the train and backtest commands share: reading a run config file, choosing the user, and
printing a report."""
import json
from pathlib import Path

import pydantic
from django.contrib.auth import get_user_model
from django.core.management.base import CommandError

from common.commands import refused
from engine.config import RunConfig

NOT_READABLE = "{path}: cannot read it ({error})"
NOT_JSON = "{path}: not JSON ({error})"
NO_SUCH_USER = "no user {name!r}"
WHICH_USER = "give --user: the strategies need an owner, and there is {found}"
REPORT_KEYS = ("total_return", "annual_return", "annual_volatility", "sharpe", "sortino", "max_drawdown",
               "calmar", "win_rate", "turnover", "shortfall_bps", "orders")


def load_config(path: str | Path) -> dict:
    """The config in `path`, validated by the engine; CommandError naming each bad field otherwise."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
    except OSError as error:
        raise CommandError(NOT_READABLE.format(path=path, error=error.strerror or error)) from None
    except json.JSONDecodeError as error:
        raise CommandError(NOT_JSON.format(path=path, error=error)) from None
    try:
        RunConfig.model_validate(raw)
    except pydantic.ValidationError as error:
        raise refused(error, label=path) from None
    return raw


def owner_named(username: str | None):
    """The user called `username`; without one, the only superuser."""
    User = get_user_model()
    if username:
        try:
            return User.objects.get_by_natural_key(username)
        except User.DoesNotExist:
            raise CommandError(NO_SUCH_USER.format(name=username)) from None
    superusers = list(User.objects.filter(is_superuser=True, is_active=True)[:2])
    if len(superusers) == 1:
        return superusers[0]
    found = "no superuser" if not superusers else "more than one superuser"
    raise CommandError(WHICH_USER.format(found=found))


def report_table(report: dict) -> str:
    """The report's main metrics beside its benchmark's, one line each."""
    ours, theirs = report.get("metrics") or {}, report.get("benchmark_metrics") or {}
    benchmark = str(report.get("benchmark") or "benchmark")
    rows = [f"{'metric':<20}{'strategy':>14}{benchmark:>16}"]
    for key in [k for k in REPORT_KEYS if k in ours] or list(ours):
        rows.append(f"{key:<20}{_number(ours.get(key)):>14}{_number(theirs.get(key)):>16}")
    for key in ("alpha", "beta"):
        if report.get(key) is not None:
            rows.append(f"{key:<20}{_number(report[key]):>14}")
    return "\n".join(rows)


def _number(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"
