"""What users and operators ask of sessions: submit, pause, resume, stop, requeue; and what deleting
a strategy means for its sessions.

Pause and stop of a running session are flags: django-q2 cannot interrupt a task, so the worker
polls them between its rollouts, about once a second (sessions.runner), and makes the move itself.
"""
import copy
import shutil

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction

from common.access import require_actor
from common.errors import Conflict
from sessions.models import SessionStatus, StrategySession
from sessions.selectors import BEST_CHECKPOINT, LAST_CHECKPOINT, SESSION_NOT_FOUND, session_run_dir
from sessions.services.queue import dispatch_on_commit
from sessions.services.transitions import ILLEGAL_TRANSITION, IllegalTransition, session_transition
from sessions.services.worker import one_line
from strategies.models import Strategy
from strategies.selectors import STRATEGY_NOT_FOUND

SESSION_TYPES = (StrategySession.SessionType.TRAINING, StrategySession.SessionType.BACKTEST)
SESSION_TYPE_UNSUPPORTED = "session_type must be 'training' or 'backtest', not {value!r}"
PRIORITY_OUT_OF_RANGE = "priority must be between {low} and {high}"
TOO_MANY_SESSIONS = (
    "{owner} already has {count} active sessions (the limit is {limit}): wait for one to end, or stop one"
)
SESSION_NOT_YOURS = "session {pk} belongs to {owner}; only its owner or a superuser can act on it"
STRATEGY_NOT_YOURS = "strategy {pk} belongs to {owner}; only its owner or a superuser can run it"
SOURCE_REQUIRED = "a backtest needs `source`: the training session whose best checkpoint it runs"
SOURCE_ONLY_FOR_BACKTEST = "only a backtest has a source session"
SOURCE_NOT_TRAINING = "session {pk} is a {kind} session; a backtest runs a training session's checkpoint"
SOURCE_OTHER_STRATEGY = "session {pk} trained another strategy ({other})"
SOURCE_NOT_COMPLETED = "session {pk} is {status}; only a completed training can be backtested"
SOURCE_NO_CHECKPOINT = "session {pk} has no best checkpoint ({path} is missing)"
STOPPED_BY = "stopped by {user}"
RESUMED_AFTER_FAILURE = "resumed by {user}; attempt {attempt} had failed: {reason}"
NO_CHECKPOINT_TO_RESUME = (
    "session {pk} failed before its first checkpoint ({path} is missing): submit the strategy again instead"
)
STRATEGY_HAS_ACTIVE_SESSIONS = (
    "strategy {pk} has sessions that are not over ({ids}): stop them, then delete the strategy"
)

PRIORITY_RANGE = (-100, 100)
# Paused sessions hold no worker and are not counted; resuming one counts it again.
ACTIVE_STATUSES = (SessionStatus.PENDING, SessionStatus.QUEUED, SessionStatus.RUNNING)
_S = SessionStatus


@transaction.atomic
def session_submit(
    *,
    strategy: Strategy,
    user,
    session_type: str = "training",
    priority: int = 0,
    source: StrategySession | None = None,
    enqueue: bool = True,
) -> StrategySession:
    """Create a session of `strategy` and queue it (pending -> queued); a worker picks it up once the
    transaction commits.

    training: runs a snapshot of the strategy's config as it is now. backtest: runs the best
    checkpoint of `source`, a completed training session of the same strategy, with the config that
    training ran. enqueue=False queues no django-q2 task: the caller runs the session in its own
    process (manage.py train --inline).

    Raises NotFound / PermissionDenied (not the user's strategy to run), ValidationError (session
    type, priority, source) and Conflict when the owner already has MAX_SESSIONS_PER_USER active
    (pending, queued or running) sessions.
    """
    require_actor(user=user, owner_id=strategy.owner_id, not_found=STRATEGY_NOT_FOUND.format(pk=strategy.pk),
                  not_yours=STRATEGY_NOT_YOURS.format(pk=strategy.pk, owner=strategy.owner))
    if session_type not in SESSION_TYPES:
        raise ValidationError({"session_type": SESSION_TYPE_UNSUPPORTED.format(value=session_type)})
    low, high = PRIORITY_RANGE
    if not low <= priority <= high:
        raise ValidationError({"priority": PRIORITY_OUT_OF_RANGE.format(low=low, high=high)})
    if session_type == StrategySession.SessionType.BACKTEST:
        config, checkpoint = _backtest_of(strategy=strategy, source=source)
    elif source is not None:
        raise ValidationError({"source": SOURCE_ONLY_FOR_BACKTEST})
    else:
        config, checkpoint = copy.deepcopy(strategy.config), ""
    _check_active_limit(owner=strategy.owner)

    session = StrategySession.objects.create(
        strategy=strategy, session_type=session_type, config=config, priority=priority, source=source,
        checkpoint_path=checkpoint,
    )
    session_transition(session=session, to=_S.QUEUED)
    if enqueue:
        dispatch_on_commit(session)
    return session


@transaction.atomic
def session_pause(*, session: StrategySession, user) -> StrategySession:
    """Ask a running session to pause: its worker stops at the end of the current epoch, keeps the
    checkpoint and moves it to paused (a backtest, which has no epochs, runs to its end). Any other
    status raises IllegalTransition (the table has no queued -> paused: a queued session is stopped,
    not paused)."""
    _require_session_actor(session=session, user=user)
    locked = _locked(session)
    if locked.status == _S.RUNNING:
        StrategySession.objects.filter(pk=locked.pk).update(pause_requested=True)
    else:
        session_transition(session=locked, to=_S.PAUSED)  # raises: only running -> paused is legal
    session.refresh_from_db()
    return session


@transaction.atomic
def session_resume(*, session: StrategySession, user) -> StrategySession:
    """Queue a paused session again; a worker continues it from the checkpoint it paused at.

    A failed training resumes the same way from its last good checkpoint (what failed it, a folder
    that refused writes, may have been mended since), as a new attempt; one that failed before its
    first checkpoint raises Conflict. A running session whose pause was requested but not reached yet
    keeps running (the request is withdrawn). Anything else raises IllegalTransition; Conflict when
    resuming would pass the owner's MAX_SESSIONS_PER_USER.
    """
    _require_session_actor(session=session, user=user)
    locked = _locked(session)
    if locked.status == _S.RUNNING and locked.pause_requested:
        StrategySession.objects.filter(pk=locked.pk).update(pause_requested=False)
    elif locked.status == _S.PAUSED:
        _check_active_limit(owner=locked.strategy.owner)
        session_transition(session=locked, to=_S.QUEUED)
        dispatch_on_commit(locked)
    elif locked.status == _S.FAILED and locked.session_type == StrategySession.SessionType.TRAINING:
        _resume_failed(locked, user=user)
    else:
        raise IllegalTransition(ILLEGAL_TRANSITION.format(pk=locked.pk, current=str(locked.status),
                                                          to=str(_S.QUEUED)))
    session.refresh_from_db()
    return session


def _resume_failed(locked: StrategySession, *, user) -> None:
    checkpoint = session_run_dir(session=locked) / LAST_CHECKPOINT
    if not checkpoint.exists():
        raise Conflict(NO_CHECKPOINT_TO_RESUME.format(pk=locked.pk, path=checkpoint))
    _check_active_limit(owner=locked.strategy.owner)
    reason = RESUMED_AFTER_FAILURE.format(user=user.get_username(), attempt=locked.attempt,
                                          reason=one_line(locked.error))
    # A new attempt, and the retries were spent on the failed one: this attempt is not retried by
    # itself (MAX_RETRIES counts attempts), its owner resumes it again if it fails again.
    session_transition(session=locked, to=_S.QUEUED, error=reason, attempt=locked.attempt + 1,
                       cancel_requested=False)
    dispatch_on_commit(locked)


@transaction.atomic
def session_stop(*, session: StrategySession, user) -> StrategySession:
    """Stop a session for good. A running one stops at the end of the current epoch (its worker moves
    it to cancelled; a backtest, which has no epochs, runs to its end); a pending, queued or paused
    one is cancelled at once. A final one raises IllegalTransition."""
    _require_session_actor(session=session, user=user)
    locked = _locked(session)
    if locked.status == _S.RUNNING:
        StrategySession.objects.filter(pk=locked.pk).update(cancel_requested=True)
    else:
        session_transition(session=locked, to=_S.CANCELLED, error=STOPPED_BY.format(user=user.get_username()))
    session.refresh_from_db()
    return session


@transaction.atomic
def session_requeue(*, session: StrategySession, error: str = "") -> StrategySession:
    """Put a session (back) in the queue: the admin's action.

    A running session is taken from its worker, which notices at its next epoch boundary and stops
    writing; that counts as an attempt (attempt + 1), and the session resumes from its last
    checkpoint. A paused or pending one is queued. A queued one gets a fresh worker slot (a django-q2
    task), for when its own was lost with a cluster. A final one raises IllegalTransition.
    """
    locked = _locked(session)
    if locked.status != _S.QUEUED:
        fields = {"attempt": locked.attempt + 1} if locked.status == _S.RUNNING else {}
        session_transition(session=locked, to=_S.QUEUED, error=error, **fields)
    dispatch_on_commit(locked)
    session.refresh_from_db()
    return session


def _require_session_actor(*, session: StrategySession, user) -> None:
    strategy = session.strategy
    require_actor(user=user, owner_id=strategy.owner_id, not_found=SESSION_NOT_FOUND.format(pk=session.pk),
                  not_yours=SESSION_NOT_YOURS.format(pk=session.pk, owner=strategy.owner))


def _locked(session: StrategySession) -> StrategySession:
    # The row lock orders a user's action against the worker's moves: a stop that read "queued"
    # cannot race a worker starting the session.
    return StrategySession.objects.select_for_update().select_related("strategy__owner").get(pk=session.pk)


def _backtest_of(*, strategy: Strategy, source: StrategySession | None) -> tuple[dict, str]:
    if source is None:
        raise ValidationError({"source": SOURCE_REQUIRED})
    if source.session_type != StrategySession.SessionType.TRAINING:
        raise ValidationError({"source": SOURCE_NOT_TRAINING.format(pk=source.pk, kind=source.session_type)})
    if source.strategy_id != strategy.pk:
        raise ValidationError({"source": SOURCE_OTHER_STRATEGY.format(pk=source.pk, other=source.strategy)})
    if source.status != _S.COMPLETED:
        raise ValidationError({"source": SOURCE_NOT_COMPLETED.format(pk=source.pk, status=source.status)})
    best = session_run_dir(session=source) / BEST_CHECKPOINT
    if not best.exists():
        raise ValidationError({"source": SOURCE_NO_CHECKPOINT.format(pk=source.pk, path=best)})
    # The config the checkpoint was trained with: the strategy may have changed since, and the
    # network must match the weights.
    return copy.deepcopy(source.config), str(best)


def _check_active_limit(*, owner) -> None:
    # Lock the owner's row, so that two submits at once cannot both count one below the limit.
    list(get_user_model().objects.select_for_update().filter(pk=owner.pk).values_list("pk", flat=True))
    limit = settings.TRADEMASTER["MAX_SESSIONS_PER_USER"]
    count = StrategySession.objects.filter(strategy__owner=owner, status__in=ACTIVE_STATUSES).count()
    if count >= limit:
        raise Conflict(TOO_MANY_SESSIONS.format(owner=owner.get_username(), count=count, limit=limit))


def strategy_sessions_before_delete(*, strategy: Strategy) -> None:
    """What deleting `strategy` means for its sessions (the strategies app deletes; sessions.apps
    connects this to its pre_delete, so that strategies need not know about sessions).

    Refuses (Conflict, STRATEGY_HAS_ACTIVE_SESSIONS naming them) while any of its sessions is pending,
    queued or running: a worker would train on for a strategy that is gone, and fail on its rows.
    Otherwise removes their run directories (checkpoints, logs) once the deletion commits.
    """
    sessions = StrategySession.objects.filter(strategy_id=strategy.pk)
    active = list(sessions.filter(status__in=ACTIVE_STATUSES).order_by("pk").values_list("pk", flat=True))
    if active:
        raise Conflict(STRATEGY_HAS_ACTIVE_SESSIONS.format(pk=strategy.pk, ids=", ".join(map(str, active))))
    run_dirs = [session_run_dir(session=session) for session in sessions.only("pk")]
    transaction.on_commit(lambda: _remove_run_dirs(run_dirs))


def _remove_run_dirs(run_dirs) -> None:
    for run_dir in run_dirs:
        shutil.rmtree(run_dir, ignore_errors=True)
