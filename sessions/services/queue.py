"""Putting sessions in front of the workers: one django-q2 task per entry into the queue."""
from django.conf import settings
from django.db import transaction

from sessions.models import StrategySession


def dispatch_on_commit(session: StrategySession) -> None:
    """Queue a worker slot for `session` once the caller's transaction commits (a worker must not look
    for the session before its row says queued)."""
    pk = session.pk
    transaction.on_commit(lambda: _dispatch(pk))


def dispatch_now(session: StrategySession) -> str:
    """Queue a worker slot for `session` inside the caller's transaction and return its task id. The
    ORM broker's task row commits (or rolls back) with that transaction, so a caller holding the
    session's row lock queues exactly one slot however many processes decide at once."""
    return _dispatch(session.pk)


def _dispatch(pk: int) -> str:
    from django_q.tasks import async_task

    # ack_failure: a slot whose task failed is not handed out again hours later (Q_CLUSTER["retry"]).
    task_id = async_task("sessions.tasks.run_session", pk, group="sessions", ack_failure=True)
    StrategySession.objects.filter(pk=pk).update(task_id=task_id)
    return task_id


def retries_left(session: StrategySession) -> bool:
    """Whether a failed or lost run may be retried: attempt is 1-based, so attempt k has used k - 1
    of TRADEMASTER["MAX_RETRIES"]."""
    return session.attempt <= settings.TRADEMASTER["MAX_RETRIES"]
