"""Reading the risk controller's state for the pages, the API and the live stream: a scope's limits and
their history, the latched kill switches someone sees or is reached by, a deployment's decisions.

Deployments are referred to by id and by their owner's (risk sits below trading); looking one up with
trading's access rules is trading's business (trading.risk_api, trading.risk_views).
"""
from __future__ import annotations

from django.db.models import Q, QuerySet

from common.access import sees_everything
from common.ids import MAX_ID
from risk.limits import NO_LIMITS, Limits
from risk.models import KillSwitch, LimitChange, RiskDecision, RiskLimit, Scope

CHANGES_SHOWN = 50
PAGE_MAX = 1000
_SWITCH = KillSwitch.SwitchScope


def limits_row(scope: str, *, user=None, strategy=None, deployment=None) -> RiskLimit | None:
    """The limits row of `scope`'s target (none for the system-wide one), or None: never set."""
    rows = RiskLimit.objects.select_related("updated_by").filter(scope=scope)
    if scope == Scope.USER:
        rows = rows.filter(user=user)
    elif scope == Scope.STRATEGY:
        rows = rows.filter(strategy=strategy)
    elif scope == Scope.DEPLOYMENT:
        rows = rows.filter(deployment=deployment)
    return rows.first()


def system_limits() -> Limits | None:
    """The system-wide ceiling, or None when none is set."""
    row = limits_row(Scope.SYSTEM)
    return row.as_limits() if row else None


def limit_changes(row: RiskLimit | None, *, limit: int = CHANGES_SHOWN) -> list[LimitChange]:
    """The latest changes of `row`, newest first."""
    if row is None:
        return []
    return list(LimitChange.objects.filter(limit=row).select_related("changed_by").order_by("-id")[:limit])


def _name(user) -> str | None:
    return user.get_username() if user is not None else None


def limits_record(scope: str, *, user=None, strategy=None, deployment=None) -> dict:
    """What the API says of a scope's limits (risk.schemas.LimitsRecordOut), as plain data."""
    row = limits_row(scope, user=user, strategy=strategy, deployment=deployment)
    return {
        "scope": scope,
        "limits": (row.as_limits() if row else NO_LIMITS).as_dict(),
        "updated_by": _name(row.updated_by) if row else None,
        "updated_at": row.updated_at if row else None,
        "changes": [{"id": c.pk, "changed_by": _name(c.changed_by), "changed_at": c.changed_at, "before": c.before,
                     "after": c.after} for c in limit_changes(row)],
    }


# Kill switches ----------------------------------------------------------------------------------------

def _latched() -> QuerySet[KillSwitch]:
    return KillSwitch.objects.filter(lifted_at__isnull=True).select_related("user", "deployment", "tripped_by")


def switches_visible(*, user) -> list[KillSwitch]:
    """The latched switches `user` may see: the global one, their own user-wide one and those of their
    deployments; staff and superusers, who see every deployment, every one."""
    switches = _latched()
    if not sees_everything(user):
        switches = switches.filter(Q(scope=_SWITCH.GLOBAL) | Q(scope=_SWITCH.USER, user=user)
                                   | Q(scope=_SWITCH.DEPLOYMENT, deployment__owner=user))
    return list(switches.order_by("id"))


def switches_reaching_user(user) -> list[KillSwitch]:
    """The latched switches that stop some of `user`'s deployments (or would stop new ones): the
    global one, their user-wide one, their deployments' own. Empty for an anonymous visitor."""
    if not user.is_authenticated:
        return []
    return list(_latched().filter(Q(scope=_SWITCH.GLOBAL) | Q(scope=_SWITCH.USER, user=user)
                                  | Q(scope=_SWITCH.DEPLOYMENT, deployment__owner=user)).order_by("id"))


def switches_reaching(*, deployment_pk: int, owner_id: int) -> list[KillSwitch]:
    """The latched switches that reach one deployment: the global one, its owner's, its own."""
    return list(_latched().filter(Q(scope=_SWITCH.GLOBAL) | Q(scope=_SWITCH.USER, user_id=owner_id)
                                  | Q(scope=_SWITCH.DEPLOYMENT, deployment_id=deployment_pk)).order_by("id"))


def switch_latched(scope: str, *, user=None, deployment_pk: int | None = None) -> KillSwitch | None:
    """The switch latched on one target (the global one, a user's, a deployment's), or None."""
    switches = _latched().filter(scope=scope)
    if scope == _SWITCH.USER:
        switches = switches.filter(user=user)
    elif scope == _SWITCH.DEPLOYMENT:
        switches = switches.filter(deployment_id=deployment_pk)
    return switches.first()


# Decisions --------------------------------------------------------------------------------------------

def decision_page(*, deployment_pk: int, after: int = 0, limit: int = 100) -> list[RiskDecision]:
    """Up to `limit` decisions of the deployment with an id above `after`, by id (an id cursor)."""
    limit = max(1, min(int(limit), PAGE_MAX))
    rows = RiskDecision.objects.filter(deployment_id=deployment_pk, pk__gt=min(max(after, 0), MAX_ID))
    return list(rows.order_by("pk")[:limit])
