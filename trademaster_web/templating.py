"""The pages' template language: Jinja2, through Django's own backend for it.

Django's template language spends about ten microseconds on every {{ variable }} (a lookup chain,
localisation, escaping), which made the templates half of a page's CPU: the session page prints a
hundred metric rows. Jinja2 compiles a template to Python. The admin keeps Django's language (the
second engine in settings.TEMPLATES).

A variable a template names but its view does not pass is an error (StrictUndefined), not an empty
cell: a number on a page comes from the view or the page does not render.
"""
from django.templatetags.static import static
from django.urls import reverse
from django.utils.dateformat import format as format_date
from django.utils.html import json_script
from django.utils.timezone import template_localtime
from jinja2 import Environment, StrictUndefined

from common.access import sees_strategy
from risk.presenters import switch_target
from risk.selectors import switches_reaching_user
from sessions.presenters import LIST_METRICS, key_results, session_actions
from sessions.reasons import without_paths
from sessions.report_format import clock, metric, metric_heading, metric_label, tenths
from trading.selectors import trades_live


def environment(**options) -> Environment:
    options["undefined"] = StrictUndefined
    env = Environment(**options)
    # The presenters an include needs whichever view renders it (the session table is on the sessions
    # list and on a strategy's page): what a user may do with a session, and its key results.
    env.globals.update(static=static, url=url, session_actions=session_actions, key_results=key_results,
                       LIST_METRICS=LIST_METRICS, sees_strategy=sees_strategy, trades_live=trades_live,
                       # Every page's banner while a kill switch reaching the user is latched (risk/banner.html).
                       kill_switches_reaching=switches_reaching_user, switch_target=switch_target)
    env.filters.update(date=date, json_script=json_script, metric=metric, metric_label=metric_label,
                       metric_heading=metric_heading, tenths=tenths, clock=clock, without_paths=without_paths)
    return env


def url(name: str, *args) -> str:
    """{{ url("sessions:detail", session.pk) }}: Django's {% url %}."""
    return reverse(name, args=args or None)


def date(value, format_string: str) -> str:
    """Django's date filter: `value` in the current time zone, in Django's date format syntax; "" for
    None (write `|date(...) or "—"` for a dash)."""
    if not value:
        return ""
    return format_date(template_localtime(value), format_string)
