import datetime

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError

from sessions.models import EPOCH_BEYOND_TOTAL, StrategySession
from strategies.models import CONFIG_DISAGREES, DATES_REVERSED, TICKERS_NOT_STRINGS, Strategy

pytestmark = pytest.mark.django_db


def test_strategy_names_are_unique_per_owner_only(strategy, dataset, django_user_model):
    other_owner = django_user_model.objects.create_user(username="linus")
    Strategy.objects.create(owner=other_owner, name=strategy.name, task=strategy.task, agent="ppo", dataset=dataset)

    with pytest.raises(IntegrityError), transaction.atomic():
        Strategy.objects.create(
            owner=strategy.owner, name=strategy.name, task=strategy.task, agent="a2c", dataset=dataset
        )


def test_strategy_config_must_agree_with_task_and_agent(strategy):
    strategy.agent = "dqn"

    with pytest.raises(ValidationError) as raised:
        strategy.full_clean()

    assert raised.value.message_dict["config"] == [CONFIG_DISAGREES.format(key="agent", config="ppo", field="dqn")]


def test_dataset_refuses_reversed_dates_and_non_string_tickers(dataset):
    dataset.end_date = datetime.date(2019, 1, 1)
    with pytest.raises(ValidationError, match=DATES_REVERSED):
        dataset.full_clean()

    dataset.end_date = datetime.date(2022, 1, 1)
    dataset.tickers = ["AAA", 7]
    with pytest.raises(ValidationError, match=TICKERS_NOT_STRINGS):
        dataset.full_clean()


def test_dataset_in_use_cannot_be_deleted(strategy, dataset):
    with pytest.raises(ProtectedError):
        dataset.delete()


def test_session_progress_cannot_pass_its_total(make_session):
    session = make_session(progress_total=10, progress_epoch=10)
    session.progress_epoch = 11

    with pytest.raises(ValidationError, match=EPOCH_BEYOND_TOTAL):
        session.full_clean()
    with pytest.raises(IntegrityError), transaction.atomic():
        StrategySession.objects.filter(pk=session.pk).update(progress_epoch=11)


def test_the_database_refuses_an_unknown_status(make_session):
    session = make_session()

    with pytest.raises(IntegrityError), transaction.atomic():
        StrategySession.objects.filter(pk=session.pk).update(status="finished")


def test_saving_a_result_keeps_the_summary_of_its_report_and_only_then(make_session):
    session = make_session()
    session.result_data = {"report": {"metrics": {"sharpe": 1.0}, "alpha": None, "drawdown": [0.0, -0.1]}}
    session.save()
    assert StrategySession.objects.get(pk=session.pk).report_summary == {"metrics": {"sharpe": 1.0}, "alpha": None}

    session.result_data = {}
    session.save(update_fields=["result_data"])
    assert StrategySession.objects.get(pk=session.pk).report_summary is None

    # A save of other fields, from a copy without result_data, leaves the summary as it is.
    session.result_data = {"report": {"metrics": {"sharpe": 2.0}}}
    session.save()
    lean = StrategySession.objects.defer("result_data").get(pk=session.pk)
    lean.priority = 5
    lean.save()
    assert StrategySession.objects.get(pk=session.pk).report_summary == {"metrics": {"sharpe": 2.0}}


def test_a_strategys_tasks_are_the_engines():
    from engine.config import TASKS
    from engine.tasks import task_choices

    assert Strategy.Task.choices == task_choices()
    assert tuple(Strategy.Task.values) == TASKS
    assert Strategy.Task.ORDER_EXECUTION.label == "Order execution"
