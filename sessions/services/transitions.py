"""The session status machine: the table of legal moves and the one function that makes them."""
from typing import Any

from django.db import transaction
from django.utils import timezone

from common.errors import DomainError
from sessions.models import FINAL_STATUSES, SessionStatus, StrategySession, report_summary_of

ILLEGAL_TRANSITION = "cannot move session {pk} from {current!r} to {to!r}"
TRANSITION_CONFLICT = (
    "cannot move session {pk} from {expected!r} to {to!r}: another process moved it to {current!r} first"
)
RESERVED_FIELDS = "session_transition sets {fields} itself"

_S = SessionStatus
# The legal moves. Completed and cancelled are final; a failed session ended its run, and may be resumed.
TRANSITIONS: dict[str, frozenset[str]] = {
    _S.PENDING: frozenset({_S.QUEUED, _S.CANCELLED}),
    _S.QUEUED: frozenset({_S.RUNNING, _S.CANCELLED, _S.FAILED}),
    # Back to queued: re-queued after its worker was lost, or for an automatic retry.
    _S.RUNNING: frozenset({_S.PAUSED, _S.COMPLETED, _S.FAILED, _S.CANCELLED, _S.QUEUED}),
    # A paused session resumes by going back to the queue (a worker picks it up from its checkpoint).
    _S.PAUSED: frozenset({_S.QUEUED, _S.CANCELLED}),
    _S.COMPLETED: frozenset(),
    # A failed training resumes from its last good checkpoint once what failed it is mended
    # (sessions.services.session_resume).
    _S.FAILED: frozenset({_S.QUEUED}),
    _S.CANCELLED: frozenset(),
}

# Set here and nowhere else; passing them in **fields would bypass the table, the timestamps or the
# summary of result_data.
_OWN_FIELDS = frozenset({"status", "started_at", "completed_at", "updated_at", "report_summary"})


class IllegalTransition(DomainError, ValueError):
    """The move is not in TRANSITIONS: a conflict with the session's state (409 in the API)."""


class TransitionConflict(IllegalTransition):
    """The move was legal from the status the caller saw, but another process changed the status first."""


def session_transition(*, session: StrategySession, to: str, error: str = "", **fields: Any) -> StrategySession:
    """Move `session` from the status it holds in memory to `to`, and write `error` and `fields` with it.

    The only code that assigns StrategySession.status. Sets started_at on the first move to running and
    completed_at on a move to a final status (and clears it on a move out of one: a failed training
    resumed); a move to queued clears pause_requested unless `fields`
    says otherwise, so a resumed session does not pause again at its first poll. `error` says why the
    session reached `to` and replaces the previous one.

    Raises IllegalTransition for a move not in TRANSITIONS, and TransitionConflict (a subclass) when the
    row no longer holds the status `session` holds: of two processes racing to move a session, one wins.
    Returns `session`, refreshed from the database.
    """
    reserved = _OWN_FIELDS.intersection(fields)
    if reserved:
        raise TypeError(RESERVED_FIELDS.format(fields=", ".join(sorted(reserved))))
    # Plain strings from here on: members and values compare equal, but only values read well in messages.
    expected, to = str(session.status), str(to)
    if to not in TRANSITIONS.get(expected, ()):
        raise IllegalTransition(ILLEGAL_TRANSITION.format(pk=session.pk, current=expected, to=to))

    with transaction.atomic():
        # The row lock (PostgreSQL; SQLite's IMMEDIATE transactions serialise writers instead) makes the
        # check and the update one step.
        locked = StrategySession.objects.select_for_update().filter(pk=session.pk)
        current, started_at = locked.values_list("status", "started_at").get()
        if current != expected:
            raise TransitionConflict(_conflict(session, expected, to, current))

        now = timezone.now()
        values: dict[str, Any] = {"status": to, "error": error, "updated_at": now}
        if to == SessionStatus.RUNNING and started_at is None:
            values["started_at"] = now
        if to in FINAL_STATUSES:
            values["completed_at"] = now
        elif expected in FINAL_STATUSES:
            values["completed_at"] = None  # a failed session resumed has not ended yet
        if to == SessionStatus.QUEUED:
            values["pause_requested"] = False
        values.update(fields)
        if "result_data" in fields:
            values["report_summary"] = report_summary_of(fields["result_data"])
        # Conditional on the expected status as well: still one winner on a database whose locking is
        # weaker than assumed above.
        moved = StrategySession.objects.filter(pk=session.pk, status=expected).update(**values)
        if moved != 1:
            current = StrategySession.objects.filter(pk=session.pk).values_list("status", flat=True).first()
            raise TransitionConflict(_conflict(session, expected, to, current))

    session.refresh_from_db()
    return session


def _conflict(session: StrategySession, expected: str, to: str, current: str | None) -> str:
    return TRANSITION_CONFLICT.format(pk=session.pk, expected=expected, to=to, current=current)
