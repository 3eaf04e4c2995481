"""The config service: form/API input -> the engine's RunConfig, with presets under the user's values."""
import pytest
from pydantic import ValidationError

from engine.config import RunConfig
from strategies.config import (
    NOT_A_SECTION,
    QUICK_EPOCHS,
    QUICK_STEPS,
    THOROUGH_EPOCHS,
    UNKNOWN_PRESET,
    config_build,
    config_schema,
)
from strategies.models import Strategy
from strategies.services import strategy_create

PM, PPO = "portfolio_management", "ppo"


def locs(raised) -> list[tuple]:
    return [tuple(e["loc"]) for e in raised.value.errors()]


def engine_defaults(task=PM, agent=PPO, dataset="synthetic") -> dict:
    return RunConfig.model_validate({"task": task, "agent": agent, "dataset": dataset}).model_dump(mode="json")


def test_no_params_give_the_engines_defaults_for_the_pair():
    config = config_build(task=PM, agent=PPO, dataset="synthetic", params={})

    assert config.model_dump(mode="json") == engine_defaults()


def test_a_dataset_row_is_passed_to_the_engine_as_its_copied_file(dataset):
    config = config_build(task=PM, agent=PPO, dataset=dataset, params={})

    assert config.dataset == dataset.path


def test_the_users_values_are_kept_and_the_rest_defaulted():
    config = config_build(
        task=PM, agent=PPO, dataset="synthetic",
        params={"env": {"window": 20}, "trainer": {"epochs": 3}, "agent_params": {"learning_rate": 1e-3}},
    )

    defaults = engine_defaults()
    assert (config.env["window"], config.trainer.epochs, config.agent_params["learning_rate"]) == (20, 3, 1e-3)
    assert config.env["transaction_cost"] == defaults["env"]["transaction_cost"]
    assert config.trainer.steps_per_epoch == defaults["trainer"]["steps_per_epoch"]


def test_the_default_preset_is_the_engines_defaults():
    assert config_build(task=PM, agent=PPO, dataset="synthetic", params={}, preset="default") == config_build(
        task=PM, agent=PPO, dataset="synthetic", params={}
    )


@pytest.mark.parametrize("task, agent", [(PM, "ppo"), (PM, "sac"), ("algorithmic_trading", "dqn")])
def test_quick_is_short_and_thorough_is_long_relative_to_the_pairs_defaults(task, agent):
    defaults = engine_defaults(task, agent)["trainer"]

    quick = config_build(task=task, agent=agent, dataset="synthetic", params={}, preset="quick").trainer
    thorough = config_build(task=task, agent=agent, dataset="synthetic", params={}, preset="thorough").trainer

    assert quick.epochs == QUICK_EPOCHS and quick.steps_per_epoch == min(QUICK_STEPS, defaults["steps_per_epoch"])
    assert thorough.epochs == THOROUGH_EPOCHS and thorough.steps_per_epoch == 2 * defaults["steps_per_epoch"]


def test_a_preset_goes_under_the_users_values():
    config = config_build(
        task=PM, agent=PPO, dataset="synthetic", params={"trainer": {"epochs": 7}}, preset="quick"
    )

    assert config.trainer.epochs == 7
    assert config.trainer.steps_per_epoch == QUICK_STEPS


@pytest.mark.parametrize(
    "params, loc",
    [
        ({"env": {"window": 0}}, ("env", "window")),
        ({"env": {"windw": 5}}, ("env", "windw")),
        ({"trainer": {"epochs": 0}}, ("trainer", "epochs")),
        ({"agent_params": {"learning_rate": "fast"}}, ("agent_params", "learning_rate")),
        ({"split": {"ratios": [0.5, 0.5, 0.5]}}, ("split",)),
    ],
)
def test_invalid_values_are_reported_by_field_path(params, loc):
    with pytest.raises(ValidationError) as raised:
        config_build(task=PM, agent=PPO, dataset="synthetic", params=params)

    assert locs(raised) == [loc]


def test_an_agent_that_does_not_do_the_task_is_an_error_on_agent():
    with pytest.raises(ValidationError) as raised:
        config_build(task=PM, agent="dqn", dataset="synthetic", params={})

    assert locs(raised) == [("agent",)]


def test_unknown_sections_and_presets_are_errors_on_their_own_paths():
    with pytest.raises(ValidationError) as raised:
        config_build(task=PM, agent=PPO, dataset="synthetic", params={"task": "order_execution", "envv": {}})
    assert locs(raised) == [("task",), ("envv",)]
    assert raised.value.errors()[0]["msg"] == NOT_A_SECTION

    with pytest.raises(ValidationError) as raised:
        config_build(task=PM, agent=PPO, dataset="synthetic", params={}, preset="heroic")
    assert locs(raised) == [("preset",)]
    assert raised.value.errors()[0]["msg"] == UNKNOWN_PRESET.format(preset="heroic", choices="quick, default, thorough")


def test_an_invalid_config_saves_nothing(user, dataset):
    with pytest.raises(ValidationError):
        strategy_create(
            owner=user, name="bad", task=PM, agent=PPO, dataset=dataset, params={"env": {"window": -1}}
        )

    assert not Strategy.objects.exists()


def test_the_stored_config_validates_back_to_the_same_config(user, dataset):
    strategy = strategy_create(
        owner=user, name="round trip", task=PM, agent=PPO, dataset=dataset,
        params={"split": {"ratios": [0.6, 0.2, 0.2]}}, preset="quick",
    )

    stored = Strategy.objects.get(pk=strategy.pk).config
    assert RunConfig.model_validate(stored).model_dump(mode="json") == stored


def test_the_form_schema_has_every_section_with_the_pairs_defaults_and_the_presets():
    form = config_schema(task=PM, agent="sac")

    assert set(form["sections"]) == {"env", "agent_params", "trainer", "split"}
    defaults = engine_defaults(PM, "sac")
    assert form["sections"]["trainer"]["properties"]["num_envs"]["default"] == defaults["trainer"]["num_envs"]
    assert form["sections"]["env"]["properties"]["window"]["description"]
    assert form["presets"]["default"] == {}
    assert form["presets"]["quick"]["trainer"]["epochs"] == QUICK_EPOCHS


def test_the_form_schema_of_a_bad_pair_is_a_field_error():
    with pytest.raises(ValidationError) as raised:
        config_schema(task="market_making", agent=PPO)

    assert ("task",) in locs(raised)
