"""engine.tasks: the one table of tasks, and everything that reads it agreeing with it."""
import dataclasses
import typing

import gymnasium as gym
import pytest

from engine.agents import AGENTS
from engine.agents.base import ALL_TASKS
from engine.config import DEFAULTS, RunConfig
from engine.envs import BATCHED_ENVS, PARAMS, SINGLE_ENVS
from engine.envs.registration import ENV_IDS
from engine.tasks import TASK_SPECS, TASKS, task_choices


def test_the_tasks_and_their_labels_in_order():
    assert TASKS == ("portfolio_management", "algorithmic_trading", "order_execution")
    assert task_choices() == [("portfolio_management", "Portfolio management"),
                              ("algorithmic_trading", "Algorithmic trading"),
                              ("order_execution", "Order execution")]


def test_the_config_accepts_exactly_the_tasks():
    assert typing.get_args(RunConfig.model_fields["task"].annotation) == TASKS
    assert {task for task, _ in DEFAULTS} <= set(TASKS)


@pytest.mark.parametrize("task", TASKS)
def test_each_tasks_classes_are_its_envs_and_params(task):
    spec = TASK_SPECS[task]
    assert issubclass(SINGLE_ENVS[task], gym.Env) and dataclasses.is_dataclass(PARAMS[task])
    assert BATCHED_ENVS[task].__module__ + ":" + BATCHED_ENVS[task].__name__ == spec.batched_env
    assert ENV_IDS[task] == spec.env_id and gym.spec(spec.env_id).entry_point == spec.single_env


@pytest.mark.parametrize("task", TASKS)
def test_each_task_has_agents_and_its_benchmark_is_one_of_them(task):
    assert task in AGENTS[TASK_SPECS[task].benchmark].tasks
    assert any(task in cls.tasks for cls in AGENTS.values() if cls.trainable)


def test_agents_support_only_known_tasks():
    assert ALL_TASKS == frozenset(TASKS)
    for name, cls in AGENTS.items():
        assert cls.tasks <= ALL_TASKS, name
