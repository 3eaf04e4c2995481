"""The only code that writes sessions, by who asks:

transitions  the status machine: TRANSITIONS and session_transition, the one function that moves status
actions      users and operators: session_submit, session_pause, session_resume, session_stop, session_requeue
worker       the worker running a session: claim, epochs, heartbeat, resource samples, the end of its run
watchdog     sessions_recover_lost: a session whose worker is gone is queued again or failed;
             sessions_dispatch_orphans: a queued session whose worker slot is gone gets another
queue        dispatch_on_commit, dispatch_now: a django-q2 task (a worker slot) per entry into the queue

Everything public is importable from here (`from sessions.services import session_submit`).
"""
from sessions.services.actions import (
    ACTIVE_STATUSES,
    NO_CHECKPOINT_TO_RESUME,
    PRIORITY_OUT_OF_RANGE,
    PRIORITY_RANGE,
    RESUMED_AFTER_FAILURE,
    SESSION_NOT_YOURS,
    SESSION_TYPE_UNSUPPORTED,
    SOURCE_NO_CHECKPOINT,
    SOURCE_NOT_COMPLETED,
    SOURCE_NOT_TRAINING,
    SOURCE_ONLY_FOR_BACKTEST,
    SOURCE_OTHER_STRATEGY,
    SOURCE_REQUIRED,
    STOPPED_BY,
    STRATEGY_HAS_ACTIVE_SESSIONS,
    STRATEGY_NOT_YOURS,
    TOO_MANY_SESSIONS,
    session_pause,
    session_requeue,
    session_resume,
    session_stop,
    session_submit,
    strategy_sessions_before_delete,
)
from sessions.services.queue import dispatch_now, dispatch_on_commit
from sessions.services.transitions import (
    ILLEGAL_TRANSITION,
    RESERVED_FIELDS,
    TRANSITION_CONFLICT,
    TRANSITIONS,
    IllegalTransition,
    TransitionConflict,
    session_transition,
)
from sessions.services.watchdog import (
    HEARTBEAT_STOPPED,
    PROCESS_GONE,
    RETRIES_SPENT,
    SLOT_GONE,
    SLOT_TAKEN_BEFORE_START,
    process_alive,
    sessions_dispatch_orphans,
    sessions_recover_lost,
    this_host,
)
from sessions.services.worker import (
    DATABASE_BACK,
    DATABASE_GAVE_UP,
    DATABASE_WAITING,
    GPU_BUSY,
    RETRY_REASON,
    Requests,
    json_safe,
    one_line,
    patiently,
    resource_usage_record,
    session_backfill_metrics,
    session_claim,
    session_device,
    session_finish,
    session_heartbeat,
    session_progress,
    session_record_epoch,
    session_requests,
    session_retry_or_fail,
    session_start,
    training_threads,
)
