"""Setting limits, tripping and lifting kill switches, and what applies to a deployment now.

Tripping locks the rows of every deployment it reaches (select_for_update) before it latches: a trading
process holds its deployment's row for the whole of a bar, so a trip lands either before a bar (which
then sees it) or after it; no order checked before the trip is sent after it. Two trips at once leave
one latched switch per target, at the higher level (a unique constraint on latched switches, and the
loser raising the winner's).
"""
from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from common.access import may_act
from common.errors import Conflict
from risk.controller import KillLevel
from risk.limits import NO_LIMITS, Limits, tightest, within_ceiling
from risk.models import KillSwitch, LimitChange, RiskLimit, Scope

GLOBAL_ONLY_SUPERUSER = "only a superuser can trip or lift the global kill switch, or set system-wide limits"
NOT_YOURS = "only the owner or a superuser can {what}"
ABOVE_CEILING = "{message} (the system-wide ceiling)"
NOTHING_TRIPPED = "no kill switch is tripped there"
_SWITCH = KillSwitch.SwitchScope


def _deployment_model():
    from django.apps import apps

    return apps.get_model("trading", "Deployment")


# Limits ---------------------------------------------------------------------------------------------

def limits_rows(deployment) -> list[RiskLimit]:
    """The rows that apply to `deployment`: system, its owner's, its strategy's and its own (one query)."""
    return list(RiskLimit.objects.filter(
        Q(scope=Scope.SYSTEM) | Q(scope=Scope.USER, user_id=deployment.owner_id)
        | Q(scope=Scope.STRATEGY, strategy_id=deployment.strategy_id)
        | Q(scope=Scope.DEPLOYMENT, deployment_id=deployment.pk)))


def limits_for(deployment) -> Limits:
    """The tightest of every limit that applies to `deployment` (the system ceiling included)."""
    rows = limits_rows(deployment)
    return tightest(*(row.as_limits() for row in rows)) if rows else NO_LIMITS


@transaction.atomic
def limits_set(*, scope: str, limits: Limits | dict, actor, user=None, strategy=None, deployment=None) -> RiskLimit:
    """Set one scope's limits (replacing them), recording the change. Refuses a user's, strategy's or
    deployment's limits above the system-wide ceiling (ValidationError naming each field)."""
    limits = limits if isinstance(limits, Limits) else _parse(limits)
    _require_limits_actor(scope=scope, actor=actor, user=user, strategy=strategy, deployment=deployment)
    if scope != Scope.SYSTEM:
        ceiling = RiskLimit.objects.filter(scope=Scope.SYSTEM).first()
        problems = within_ceiling(limits, ceiling.as_limits()) if ceiling else []
        if problems:
            raise ValidationError({field: ABOVE_CEILING.format(message=message) for field, message in problems})
    keys = {"scope": scope, "user": user if scope == Scope.USER else None,
            "strategy": strategy if scope == Scope.STRATEGY else None,
            "deployment": deployment if scope == Scope.DEPLOYMENT else None}
    row = RiskLimit.objects.select_for_update().filter(**keys).first() or RiskLimit(**keys)
    before = dict(row.limits or {})
    row.limits, row.updated_by = limits.as_dict(), actor
    row.save()
    LimitChange.objects.create(limit=row, changed_by=actor, before=before, after=row.limits)
    return row


def _parse(values: dict) -> Limits:
    try:
        return Limits.from_dict(values)
    except (TypeError, ValueError) as error:
        raise ValidationError({"limits": str(error)}) from None


def _require_limits_actor(*, scope, actor, user, strategy, deployment) -> None:
    if scope == Scope.SYSTEM:
        if not actor.is_superuser:
            raise PermissionDenied(GLOBAL_ONLY_SUPERUSER)
        return
    owner_id = {Scope.USER: getattr(user, "pk", None), Scope.STRATEGY: getattr(strategy, "owner_id", None),
                Scope.DEPLOYMENT: getattr(deployment, "owner_id", None)}[scope]
    if owner_id is None:
        raise ValidationError({scope: f"name the {scope} whose limits these are"})
    if not may_act(user=actor, owner_id=owner_id):
        raise PermissionDenied(NOT_YOURS.format(what=f"set these {scope} limits"))


# Kill switches ----------------------------------------------------------------------------------------

def kill_level_for(deployment) -> KillLevel:
    """The most severe latched switch reaching `deployment`: global, its owner's, its own (one query)."""
    levels = KillSwitch.objects.filter(lifted_at__isnull=True).filter(
        Q(scope=_SWITCH.GLOBAL) | Q(scope=_SWITCH.USER, user_id=deployment.owner_id)
        | Q(scope=_SWITCH.DEPLOYMENT, deployment_id=deployment.pk)).values_list("level", flat=True)
    return max((KillLevel.of(level) for level in levels), default=KillLevel.NONE)


def emergency_stop(scope: str, level: str, *, actor=None, user=None, deployment=None, reason: str = "",
                   automatic: bool = False) -> KillSwitch:
    """Trip the kill switch of `scope` (global, a user's deployments, one deployment) at `level`
    (pause, halt, flatten), latched until lifted. A switch already latched there is raised to `level`
    when that is more severe, never lowered. actor None: the system itself (a loss limit)."""
    level = str(KillLevel.of(level))
    if actor is not None:
        _require_switch_actor(scope=scope, actor=actor, user=user, deployment=deployment)
    target = _switch_target(scope, user=user, deployment=deployment)
    for _ in range(3):
        try:
            with transaction.atomic():
                _lock_reached(scope, target)
                return _latch(scope, target, level, actor=actor, reason=reason, automatic=automatic)
        except IntegrityError:
            continue  # another trip latched this target first: raise that one instead
    raise Conflict("the kill switch kept changing under this trip; try again")


def _latch(scope, target, level, *, actor, reason, automatic) -> KillSwitch:
    latched = KillSwitch.objects.select_for_update().filter(scope=scope, lifted_at__isnull=True, **target).first()
    if latched is None:
        return KillSwitch.objects.create(scope=scope, level=level, reason=reason or f"tripped at {level}",
                                         automatic=automatic, tripped_by=actor, **target)
    if KillLevel.of(level) > KillLevel.of(latched.level):
        latched.level, latched.reason = level, reason or latched.reason
        latched.save(update_fields=["level", "reason"])
    return latched


def kill_switch_lift(scope: str, *, actor, user=None, deployment=None) -> KillSwitch:
    """Lift the switch latched on `scope`'s target (a person, with the right to)."""
    _require_switch_actor(scope=scope, actor=actor, user=user, deployment=deployment)
    target = _switch_target(scope, user=user, deployment=deployment)
    with transaction.atomic():
        _lock_reached(scope, target)
        latched = KillSwitch.objects.select_for_update().filter(scope=scope, lifted_at__isnull=True, **target).first()
        if latched is None:
            raise Conflict(NOTHING_TRIPPED)
        latched.lifted_at, latched.lifted_by = timezone.now(), actor
        latched.save(update_fields=["lifted_at", "lifted_by"])
    return latched


def _switch_target(scope: str, *, user, deployment) -> dict:
    if scope == _SWITCH.GLOBAL:
        return {}
    if scope == _SWITCH.USER:
        if user is None:
            raise ValidationError({"user": "name the user whose deployments to stop"})
        return {"user": user}
    if scope == _SWITCH.DEPLOYMENT:
        if deployment is None:
            raise ValidationError({"deployment": "name the deployment to stop"})
        return {"deployment": deployment}
    raise ValidationError({"scope": f"scope must be one of {', '.join(_SWITCH.values)}, not {scope!r}"})


def _lock_reached(scope: str, target: dict) -> None:
    """Lock the rows of the active deployments the switch reaches (see the module's docstring)."""
    deployments = _deployment_model().objects.exclude(status__in=["stopped", "failed"])
    if scope == _SWITCH.USER:
        deployments = deployments.filter(owner=target["user"])
    elif scope == _SWITCH.DEPLOYMENT:
        deployments = deployments.filter(pk=target["deployment"].pk)
    list(deployments.select_for_update().order_by("pk").values_list("pk", flat=True))


def _require_switch_actor(*, scope, actor, user, deployment) -> None:
    if scope == _SWITCH.GLOBAL:
        if not actor.is_superuser:
            raise PermissionDenied(GLOBAL_ONLY_SUPERUSER)
    elif scope == _SWITCH.USER and user is not None and not may_act(user=actor, owner_id=user.pk):
        raise PermissionDenied(NOT_YOURS.format(what="stop these deployments"))
    elif scope == _SWITCH.DEPLOYMENT and deployment is not None and not may_act(user=actor,
                                                                                 owner_id=deployment.owner_id):
        raise PermissionDenied(NOT_YOURS.format(what="stop this deployment"))
