import datetime

import pytest
from pydantic import ValidationError

from common.errors import Conflict, NotFound
from strategies.models import Dataset, Strategy
from strategies.selectors import dataset_list, strategy_get, strategy_list
from strategies.services import STRATEGY_NAME_TAKEN, strategy_create, strategy_delete, strategy_update

pytestmark = pytest.mark.django_db

PM = "portfolio_management"


@pytest.fixture
def create(dataset):
    def make(owner, name="momentum", **kwargs) -> Strategy:
        values = {"task": PM, "agent": "ppo", "dataset": dataset, "params": {}, **kwargs}
        return strategy_create(owner=owner, name=name, **values)

    return make


def test_strategy_create_stores_the_validated_engine_config(user, dataset, create):
    strategy = create(user, description="first try", params={"env": {"window": 30}})

    strategy.refresh_from_db()
    assert (strategy.owner, strategy.task, strategy.agent, strategy.dataset) == (user, PM, "ppo", dataset)
    assert strategy.config["env"]["window"] == 30
    assert strategy.config["dataset"] == dataset.path
    assert strategy.config["trainer"]["epochs"] == 10  # a default, stored resolved


def test_strategy_names_are_unique_per_owner(user, other_user, create):
    create(user)
    create(other_user)  # the same name, another owner

    with pytest.raises(Conflict, match=STRATEGY_NAME_TAKEN.format(name="momentum")) as raised:
        create(user, agent="a2c")
    assert raised.value.field == "name"
    assert Strategy.objects.count() == 2


def test_strategy_update_merges_params_over_the_stored_config(user, create):
    strategy = create(user, params={"trainer": {"epochs": 3}})

    strategy_update(strategy=strategy, user=user, params={"env": {"window": 5}}, description="shorter window")

    strategy.refresh_from_db()
    assert strategy.config["env"]["window"] == 5
    assert strategy.config["trainer"]["epochs"] == 3
    assert strategy.description == "shorter window"


def test_a_new_agent_starts_the_config_over_from_its_defaults(user, create):
    strategy = create(user, params={"agent_params": {"n_steps": 32}, "trainer": {"epochs": 3}})

    strategy_update(strategy=strategy, user=user, agent="sac")

    strategy.refresh_from_db()
    assert strategy.agent == strategy.config["agent"] == "sac"
    assert "n_steps" not in strategy.config["agent_params"]
    assert strategy.config["trainer"]["epochs"] == 10


def test_a_preset_on_update_starts_over_with_the_preset(user, create):
    strategy = create(user, params={"trainer": {"epochs": 3}})

    strategy_update(strategy=strategy, user=user, preset="thorough")

    strategy.refresh_from_db()
    assert strategy.config["trainer"]["epochs"] == 50


def test_a_new_dataset_is_written_into_the_config(user, dataset, create):
    strategy = create(user)
    other = Dataset.objects.create(
        name="other", frequency="daily", periods_per_year=252, tickers=["X"], path="synthetic-signal",
        start_date=datetime.date(2020, 1, 1), end_date=datetime.date(2020, 12, 31), checksum="1" * 64, n_bars=252,
    )

    strategy_update(strategy=strategy, user=user, dataset=other)

    strategy.refresh_from_db()
    assert strategy.dataset == other and strategy.config["dataset"] == "synthetic-signal"


def test_an_invalid_update_changes_nothing(user, create):
    strategy = create(user)
    before = Strategy.objects.values().get(pk=strategy.pk)

    with pytest.raises(ValidationError):
        strategy_update(strategy=strategy, user=user, name="renamed", params={"trainer": {"epochs": -1}})

    assert Strategy.objects.values().get(pk=strategy.pk) == before


def test_renaming_onto_a_taken_name_is_a_conflict(user, create):
    create(user, name="a")
    b = create(user, name="b")

    with pytest.raises(Conflict):
        strategy_update(strategy=b, user=user, name="a")
    strategy_update(strategy=b, user=user, name="b")  # its own name is not taken


def test_only_the_owner_or_a_superuser_may_change_a_strategy(user, other_user, staff_user, superuser, create):
    strategy = create(user)

    with pytest.raises(NotFound):
        strategy_update(strategy=strategy, user=other_user, description="mine now")
    with pytest.raises(NotFound):
        strategy_delete(strategy=strategy, user=other_user)
    # Staff run sessions, but a strategy's config is its owner's: they do not see it either.
    with pytest.raises(NotFound):
        strategy_update(strategy=strategy, user=staff_user, description="reviewed")
    with pytest.raises(NotFound):
        strategy_delete(strategy=strategy, user=staff_user)
    assert Strategy.objects.get(pk=strategy.pk).description == ""

    strategy_update(strategy=strategy, user=superuser, description="fixed by an admin")
    assert Strategy.objects.get(pk=strategy.pk).description == "fixed by an admin"


def test_strategy_delete_removes_it(user, create):
    strategy = create(user)

    strategy_delete(strategy=strategy, user=user)

    assert not Strategy.objects.exists()


def test_users_and_staff_list_their_own_strategies_and_superusers_everyones(
    user, other_user, staff_user, superuser, create
):
    mine, theirs = create(user), create(other_user)

    assert list(strategy_list(user=user)) == [mine]
    assert list(strategy_list(user=other_user)) == [theirs]
    assert list(strategy_list(user=staff_user)) == []
    assert set(strategy_list(user=superuser)) == {mine, theirs}


def test_strategy_get_hides_someone_elses_strategy(user, other_user, staff_user, create):
    theirs = create(other_user)

    with pytest.raises(NotFound):
        strategy_get(user=user, pk=theirs.pk)
    with pytest.raises(NotFound):
        strategy_get(user=user, pk=theirs.pk + 1000)
    assert strategy_get(user=other_user, pk=theirs.pk) == theirs
    with pytest.raises(NotFound):
        strategy_get(user=staff_user, pk=theirs.pk)


def test_dataset_list_is_every_dataset_by_name(dataset):
    Dataset.objects.create(
        name="a-first", frequency="daily", periods_per_year=252, tickers=["X"], path="/data/a.csv",
        start_date=datetime.date(2020, 1, 1), end_date=datetime.date(2020, 12, 31), checksum="1" * 64, n_bars=252,
    )

    assert [d.name for d in dataset_list()] == ["a-first", "synthetic-daily"]
