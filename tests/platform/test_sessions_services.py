"""Session services: submit, pause, resume, stop, requeue, and how a worker claims a queued session."""
import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django_q.models import OrmQ

from common.errors import Conflict, NotFound
from engine.training import trainer as engine_trainer
from sessions import selectors
from sessions.models import SessionStatus as S
from sessions.models import StrategySession
from sessions.services import (
    GPU_BUSY,
    ILLEGAL_TRANSITION,
    SOURCE_NOT_COMPLETED,
    SOURCE_ONLY_FOR_BACKTEST,
    SOURCE_OTHER_STRATEGY,
    SOURCE_REQUIRED,
    STOPPED_BY,
    TOO_MANY_SESSIONS,
    IllegalTransition,
    session_claim,
    session_device,
    session_pause,
    session_requeue,
    session_resume,
    session_start,
    session_stop,
    session_submit,
    session_transition,
)

pytestmark = pytest.mark.django_db

WORKER = {"process_id": 777, "host": "worker-host"}


@pytest.fixture
def submit(tiny_strategy, user, settings):
    # Room for the queues these tests build; the limit's own tests set it back.
    settings.TRADEMASTER = {**settings.TRADEMASTER, "MAX_SESSIONS_PER_USER": 10}

    def make(**kwargs) -> StrategySession:
        return session_submit(strategy=tiny_strategy, user=user, **kwargs)

    return make


def slots() -> list[int]:
    """The session ids of the run_session tasks waiting in django-q2's ORM queue."""
    return [q.task["args"][0] for q in OrmQ.objects.order_by("id") if q.func() == "sessions.tasks.run_session"]


def running(session: StrategySession) -> StrategySession:
    return session_start(session=session, **WORKER)


# ------------------------------------------------------------------------------------------- submit

def test_session_submit_queues_a_snapshot_of_the_config_and_a_worker_slot_on_commit(
    submit, tiny_strategy, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        session = submit(priority=5)
        assert slots() == []  # not before the commit: a worker would look for a row it cannot see

    assert len(callbacks) == 1
    session.refresh_from_db()
    assert (session.status, session.session_type, session.priority) == (S.QUEUED, "training", 5)
    assert session.config == tiny_strategy.config
    assert slots() == [session.pk] and session.task_id == OrmQ.objects.get().task_id()

    tiny_strategy.config["trainer"]["epochs"] = 99
    tiny_strategy.save()
    session.refresh_from_db()
    assert session.config["trainer"]["epochs"] == 3  # a snapshot


def test_session_submit_refuses_past_the_owners_active_session_limit(submit, settings, user):
    settings.TRADEMASTER = {**settings.TRADEMASTER, "MAX_SESSIONS_PER_USER": 2}
    first, _ = submit(), submit()

    with pytest.raises(Conflict) as raised:
        submit()

    assert str(raised.value) == TOO_MANY_SESSIONS.format(owner="ada", count=2, limit=2)
    assert StrategySession.objects.count() == 2
    session_stop(session=first, user=user)
    submit()  # a cancelled session frees its place


def test_paused_sessions_do_not_count_toward_the_limit_but_resuming_one_does(submit, settings, user):
    settings.TRADEMASTER = {**settings.TRADEMASTER, "MAX_SESSIONS_PER_USER": 1}
    paused = running(submit())
    session_transition(session=paused, to=S.PAUSED)
    submit()

    with pytest.raises(Conflict):
        session_resume(session=paused, user=user)

    assert StrategySession.objects.get(pk=paused.pk).status == S.PAUSED


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"session_type": "live"}, "session_type"), ({"priority": 101}, "priority"), ({"priority": -101}, "priority")],
)
def test_session_submit_refuses_bad_input_by_field(submit, kwargs, field):
    with pytest.raises(ValidationError) as raised:
        submit(**kwargs)

    assert list(raised.value.message_dict) == [field]
    assert not StrategySession.objects.exists()


def test_only_the_owner_or_a_superuser_may_submit(tiny_strategy, other_user, staff_user, superuser):
    with pytest.raises(NotFound):
        session_submit(strategy=tiny_strategy, user=other_user)
    with pytest.raises(PermissionDenied):
        session_submit(strategy=tiny_strategy, user=staff_user)

    session = session_submit(strategy=tiny_strategy, user=superuser)

    assert session.strategy.owner.username == "ada"


# ---------------------------------------------------------------------------------------- backtests

def completed_training(submit, runs) -> StrategySession:
    session = running(submit())
    best = runs / str(session.pk) / "best.pt"
    best.parent.mkdir(parents=True)
    best.write_bytes(b"weights")
    return session_transition(session=session, to=S.COMPLETED)


def test_a_backtest_runs_the_best_checkpoint_of_a_completed_training_with_its_config(
    submit, tiny_strategy, user, runs_dir
):
    training = completed_training(submit, runs_dir)
    tiny_strategy.config["trainer"]["epochs"] = 50  # changed since: the checkpoint was trained with 3
    tiny_strategy.save()

    backtest = session_submit(strategy=tiny_strategy, user=user, session_type="backtest", source=training)

    assert (backtest.status, backtest.source, backtest.session_type) == (S.QUEUED, training, "backtest")
    assert backtest.checkpoint_path == str(runs_dir / str(training.pk) / "best.pt")
    assert backtest.config == training.config and backtest.config["trainer"]["epochs"] == 3


def test_a_backtest_needs_a_completed_training_of_the_same_strategy(submit, make_strategy, user, runs_dir):
    other = make_strategy(user, name="other")
    unfinished = running(submit())

    def refused(**kwargs) -> str:
        with pytest.raises(ValidationError) as raised:
            session_submit(strategy=other, user=user, session_type="backtest", **kwargs)
        return raised.value.message_dict["source"][0]

    assert refused() == SOURCE_REQUIRED
    assert refused(source=unfinished) == SOURCE_OTHER_STRATEGY.format(pk=unfinished.pk, other=unfinished.strategy)
    with pytest.raises(ValidationError) as raised:
        session_submit(strategy=unfinished.strategy, user=user, session_type="backtest", source=unfinished)
    assert raised.value.message_dict["source"] == [SOURCE_NOT_COMPLETED.format(pk=unfinished.pk, status="running")]
    with pytest.raises(ValidationError) as raised:
        submit(source=unfinished)
    assert raised.value.message_dict["source"] == [SOURCE_ONLY_FOR_BACKTEST]


def test_checkpoint_names_are_the_engines():
    assert (selectors.LAST_CHECKPOINT, selectors.BEST_CHECKPOINT) == (engine_trainer.LAST, engine_trainer.BEST)


# ---------------------------------------------------------------------------- pause, resume, stop

def test_pausing_a_running_session_asks_its_worker_to_pause_at_the_next_epoch(submit, user):
    session = running(submit())

    session_pause(session=session, user=user)

    assert (session.status, session.pause_requested) == (S.RUNNING, True)


def test_a_queued_session_cannot_be_paused_only_stopped(submit, user):
    session = submit()

    with pytest.raises(IllegalTransition) as raised:
        session_pause(session=session, user=user)

    assert str(raised.value) == ILLEGAL_TRANSITION.format(pk=session.pk, current="queued", to="paused")
    session_stop(session=session, user=user)
    assert (session.status, session.error) == (S.CANCELLED, STOPPED_BY.format(user="ada"))


def test_stopping_a_running_session_asks_its_worker_and_a_final_one_is_refused(submit, user):
    session = running(submit())

    session_stop(session=session, user=user)
    assert (session.status, session.cancel_requested) == (S.RUNNING, True)

    session_transition(session=session, to=S.CANCELLED)
    with pytest.raises(IllegalTransition):
        session_stop(session=session, user=user)


def test_resuming_a_paused_session_queues_it_with_a_new_slot(submit, user, django_capture_on_commit_callbacks):
    session = running(submit(enqueue=False))
    session_pause(session=session, user=user)
    session_transition(session=session, to=S.PAUSED)  # what its worker does at the epoch's end

    with django_capture_on_commit_callbacks(execute=True):
        session_resume(session=session, user=user)

    assert (session.status, session.pause_requested) == (S.QUEUED, False)
    assert slots() == [session.pk]


def test_resuming_before_the_pause_is_reached_withdraws_the_request(submit, user):
    session = running(submit())
    session_pause(session=session, user=user)

    session_resume(session=session, user=user)

    assert (session.status, session.pause_requested) == (S.RUNNING, False)
    with pytest.raises(IllegalTransition):
        session_resume(session=session, user=user)  # running, nothing to resume


@pytest.mark.parametrize("action", [session_pause, session_resume, session_stop])
def test_other_users_do_not_see_the_session_and_staff_may_not_act_on_it(
    submit, other_user, staff_user, superuser, action
):
    session = running(submit())

    with pytest.raises(NotFound):
        action(session=session, user=other_user)
    with pytest.raises(PermissionDenied):
        action(session=session, user=staff_user)
    if action is not session_resume:
        action(session=session, user=superuser)


def test_requeue_takes_a_running_session_from_its_worker_and_counts_an_attempt(
    submit, django_capture_on_commit_callbacks
):
    session = running(submit(enqueue=False))
    assert session.attempt == 1

    with django_capture_on_commit_callbacks(execute=True):
        session_requeue(session=session, error="stuck")

    assert (session.status, session.attempt, session.error) == (S.QUEUED, 2, "stuck")
    with django_capture_on_commit_callbacks(execute=True):
        session_requeue(session=session)  # queued: only a fresh slot
    assert session.attempt == 2 and slots() == [session.pk, session.pk]
    session_transition(session=session, to=S.CANCELLED)
    with pytest.raises(IllegalTransition):
        session_requeue(session=session)


# -------------------------------------------------------------------------------------------- claim

def test_a_worker_claims_the_highest_priority_then_its_own_slot_then_the_oldest(submit):
    old, own, urgent, later = submit(), submit(), submit(priority=3), submit()

    order = [session_claim(preferred=own.pk, **WORKER) for _ in range(4)]

    assert order == [urgent, own, old, later]
    assert session_claim(**WORKER) is None
    started = StrategySession.objects.get(pk=urgent.pk)
    assert (started.status, started.process_id, started.worker_host, started.device, started.attempt) == (
        S.RUNNING, 777, "worker-host", "cpu", 1,
    )
    assert started.heartbeat_at is not None and started.log_path.endswith(f"/{urgent.pk}/session.log")


def test_sessions_wait_while_their_gpu_runs_its_limit(submit, settings):
    settings.TRADEMASTER = {**settings.TRADEMASTER, "MAX_GPU_JOBS_PER_DEVICE": 1}

    def on(device: str, **kwargs) -> StrategySession:
        session = submit(**kwargs)
        StrategySession.objects.filter(pk=session.pk).update(
            config={**session.config, "trainer": {**session.config["trainer"], "device": device}}
        )
        session.refresh_from_db()
        return session

    first, second, other_gpu = on("cuda:0", priority=9), on("cuda", priority=9), on("cuda:1")
    cpu = on("cpu")

    assert session_claim(**WORKER) == first
    # "cuda" is cuda:0, which is full: cuda:1 and the CPU go ahead of its higher priority.
    assert [session_claim(**WORKER), session_claim(**WORKER)] == [other_gpu, cpu]
    assert session_claim(**WORKER) is None
    with pytest.raises(Conflict) as raised:
        session_start(session=second, **WORKER)
    assert str(raised.value) == GPU_BUSY.format(device="cuda:0", count=1, limit=1)

    session_transition(session=StrategySession.objects.get(pk=first.pk), to=S.COMPLETED)
    assert session_claim(**WORKER) == second


def test_session_device_resolves_auto_and_bare_cuda():
    assert session_device({"trainer": {"device": "auto"}}) == "cpu"  # no GPU on this machine
    assert session_device({"trainer": {"device": "cuda"}}) == "cuda:0"
    assert session_device({"trainer": {"device": "cuda:2"}}) == "cuda:2"
    assert session_device({}) == "cpu"
