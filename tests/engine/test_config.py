"""The run config: one schema, complete defaults, errors that name the field, lossless JSON."""
import json

import pytest
from pydantic import ValidationError

from engine.config import RunConfig, check_fits, schema

MINIMAL = {"task": "portfolio_management", "dataset": "synthetic", "agent": "ppo"}


def error_locs(exc: ValidationError) -> list[tuple]:
    return [tuple(e["loc"]) for e in exc.errors()]


def test_task_dataset_and_agent_make_a_complete_config():
    config = RunConfig.model_validate(MINIMAL)
    assert config.env["window"] >= 1 and config.env["transaction_cost"] >= 0
    assert config.agent_params["learning_rate"] > 0
    assert config.trainer.epochs >= 1 and config.trainer.best_by == "sharpe"


def test_every_agent_of_every_task_has_a_complete_default_config():
    from engine.agents import AGENTS

    for name, cls in AGENTS.items():
        for task in cls.tasks:
            config = RunConfig(task=task, dataset="synthetic", agent=name)
            assert config.env_params() is not None and config.agent_params_obj() is not None


def test_config_round_trips_through_json_losslessly():
    config = RunConfig.model_validate({
        **MINIMAL,
        "env": {"transaction_cost": 0.0025, "window": 7},
        "agent_params": {"learning_rate": 1e-4},
        "split": {"train": ["2015-01-01", "2018-12-31"], "valid": ["2019-01-01", "2019-12-31"],
                  "test": ["2020-01-01", "2020-12-31"]},
        "trainer": {"epochs": 3, "seed": 7},
    })
    text = config.model_dump_json()
    again = RunConfig.model_validate_json(text)
    assert again == config
    assert json.loads(again.model_dump_json()) == json.loads(text)


def test_user_values_override_the_pair_defaults():
    config = RunConfig.model_validate({**MINIMAL, "env": {"episode_length": 64}})
    assert config.env["episode_length"] == 64
    assert RunConfig.model_validate(MINIMAL).env["episode_length"] == 256


def test_unknown_task_is_refused_naming_the_task_field():
    with pytest.raises(ValidationError) as exc:
        RunConfig.model_validate({**MINIMAL, "task": "market_making"})
    assert ("task",) in error_locs(exc.value)


def test_agent_that_does_not_support_the_task_is_refused_naming_the_agent_field():
    with pytest.raises(ValidationError) as exc:
        RunConfig.model_validate({**MINIMAL, "agent": "dqn"})
    assert error_locs(exc.value) == [("agent",)]
    assert "does not support task 'portfolio_management'" in str(exc.value)


def test_unknown_agent_is_refused_listing_the_known_ones():
    with pytest.raises(ValidationError) as exc:
        RunConfig.model_validate({**MINIMAL, "agent": "alphazero"})
    assert error_locs(exc.value) == [("agent",)] and "ppo" in str(exc.value)


@pytest.mark.parametrize("section, field, value", [
    ("env", "transaction_cost", -0.01),
    ("env", "window", 0),
    ("env", "initial_cash", 0),
    ("agent_params", "learning_rate", -1.0),
    ("trainer", "epochs", 0),
    ("trainer", "num_envs", 0),
])
def test_out_of_range_values_are_refused_naming_the_field(section, field, value):
    with pytest.raises(ValidationError) as exc:
        RunConfig.model_validate({**MINIMAL, section: {field: value}})
    assert (section, field) in error_locs(exc.value)


def test_unknown_parameters_are_refused_naming_them():
    with pytest.raises(ValidationError) as exc:
        RunConfig.model_validate({**MINIMAL, "env": {"windw": 5}, "agent_params": {"lr": 1}})
    assert set(error_locs(exc.value)) == {("env", "windw"), ("agent_params", "lr")}


def test_overlapping_split_ranges_are_refused():
    with pytest.raises(ValidationError, match="overlap"):
        RunConfig.model_validate({**MINIMAL, "split": {
            "train": ["2015-01-01", "2018-12-31"], "valid": ["2018-06-01", "2019-12-31"],
            "test": ["2020-01-01", "2020-12-31"]}})


def test_a_window_longer_than_a_split_is_refused_naming_the_window():
    config = RunConfig.model_validate({**MINIMAL, "env": {"window": 30}})
    with pytest.raises(ValidationError) as exc:
        check_fits(config, {"train": 500, "valid": 20, "test": 100})
    assert error_locs(exc.value) == [("env", "window")]
    assert "valid split (20 bars)" in str(exc.value)


def test_schema_of_a_pair_carries_that_pairs_defaults_and_descriptions():
    sch = schema("portfolio_management", "ppo")
    window = sch["env"]["properties"]["window"]
    assert window["default"] == RunConfig.model_validate(MINIMAL).env["window"]
    assert window["description"]
    assert sch["env"]["properties"]["episode_length"]["default"] == 256
    assert "learning_rate" in sch["agent_params"]["properties"]


def test_errors_in_every_section_are_reported_in_one_round():
    with pytest.raises(ValidationError) as exc:
        RunConfig.model_validate({**MINIMAL, "env": {"window": 0}, "agent_params": {"learning_rate": -1},
                                  "trainer": {"epochs": 0}})
    assert set(error_locs(exc.value)) == {("env", "window"), ("agent_params", "learning_rate"), ("trainer", "epochs")}
