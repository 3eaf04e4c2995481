"""The deployment status machine: the table of legal moves and the one function that makes them."""
from typing import Any

from django.db import transaction
from django.utils import timezone

from common.errors import Conflict
from trading.models import FINAL_DEPLOYMENT_STATUSES, Deployment, DeploymentEvent, DeploymentStatus

ILLEGAL_TRANSITION = "cannot move deployment {pk} from {current!r} to {to!r}"
TRANSITION_CONFLICT = (
    "cannot move deployment {pk} from {expected!r} to {to!r}: another process moved it to {current!r} first"
)
RESERVED_FIELDS = "deployment_transition sets {fields} itself"

_S = DeploymentStatus
TRANSITIONS: dict[str, frozenset[str]] = {
    # A trading process starts it once its policy, feed and broker are ready and reconciled.
    _S.PENDING: frozenset({_S.RUNNING, _S.STOPPED, _S.HALTED, _S.FAILED}),
    _S.RUNNING: frozenset({_S.PAUSED, _S.STOPPED, _S.HALTED, _S.FAILED}),
    _S.PAUSED: frozenset({_S.RUNNING, _S.STOPPED, _S.HALTED, _S.FAILED}),
    # Halted by risk, or because its record and its broker disagree: a person looks, then resumes or stops.
    _S.HALTED: frozenset({_S.RUNNING, _S.STOPPED, _S.FAILED}),
    _S.STOPPED: frozenset(),
    _S.FAILED: frozenset(),
}
_OWN_FIELDS = frozenset({"status", "started_at", "stopped_at", "updated_at"})
# What a move says in the deployment's event log.
SEVERITY = {_S.HALTED: DeploymentEvent.Severity.CRITICAL, _S.FAILED: DeploymentEvent.Severity.CRITICAL}


class IllegalDeploymentTransition(Conflict):
    """The move is not in TRANSITIONS (409 in the API)."""


class DeploymentTransitionConflict(IllegalDeploymentTransition):
    """Legal from the status the caller saw, but another process changed it first."""


def deployment_transition(*, deployment: Deployment, to: str, error: str = "", **fields: Any) -> Deployment:
    """Move `deployment` from the status it holds in memory to `to`, writing `error` (why) and `fields`,
    and log the move as an event. The only code that assigns Deployment.status. Raises
    IllegalDeploymentTransition for a move not in TRANSITIONS and DeploymentTransitionConflict when the
    row no longer holds the status `deployment` holds. Returns `deployment`, refreshed."""
    reserved = _OWN_FIELDS.intersection(fields)
    if reserved:
        raise TypeError(RESERVED_FIELDS.format(fields=", ".join(sorted(reserved))))
    expected, to = str(deployment.status), str(to)
    if to not in TRANSITIONS.get(expected, ()):
        raise IllegalDeploymentTransition(ILLEGAL_TRANSITION.format(pk=deployment.pk, current=expected, to=to))
    with transaction.atomic():
        current, started_at = (Deployment.objects.select_for_update().filter(pk=deployment.pk)
                               .values_list("status", "started_at").get())
        if current != expected:
            raise DeploymentTransitionConflict(
                TRANSITION_CONFLICT.format(pk=deployment.pk, expected=expected, to=to, current=current))
        now = timezone.now()
        values: dict[str, Any] = {"status": to, "error": error, "updated_at": now, **fields}
        if to == _S.RUNNING and started_at is None:
            values["started_at"] = now
        if to in FINAL_DEPLOYMENT_STATUSES:
            values.update(stopped_at=now, lease_owner="", lease_expires_at=None)
        Deployment.objects.filter(pk=deployment.pk, status=expected).update(**values)
        message = f"{expected} -> {to}" + (f": {error}" if error else "")
        DeploymentEvent.objects.create(deployment_id=deployment.pk, message=message,
                                       severity=SEVERITY.get(to, DeploymentEvent.Severity.INFO))
    deployment.refresh_from_db()
    return deployment
