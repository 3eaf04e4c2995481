"""Every task's env is reachable by its gymnasium id and through engine.envs' task mappings."""
import dataclasses

import gymnasium as gym
import numpy as np
import pytest

import engine  # noqa: F401  (importing the package registers the ids)
from engine.envs import BATCHED_ENVS, PARAMS, SINGLE_ENVS, TASKS
from engine.envs.registration import ENV_IDS


def test_the_task_mappings_cover_the_three_tasks():
    assert TASKS == ("portfolio_management", "algorithmic_trading", "order_execution")
    for mapping in (SINGLE_ENVS, BATCHED_ENVS, PARAMS):
        assert tuple(mapping) == TASKS
        assert len(mapping) == 3
    with pytest.raises(KeyError):
        SINGLE_ENVS["unknown_task"]


@pytest.mark.parametrize("task", TASKS)
def test_make_builds_the_task_env_on_the_synthetic_market(task):
    env = gym.make(ENV_IDS[task])
    assert isinstance(env.unwrapped, SINGLE_ENVS[task])
    assert isinstance(env.unwrapped.params, PARAMS[task])
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    assert obs.shape == (env.unwrapped.obs_layout.size,)
    obs, reward, terminated, truncated, _ = env.step(env.action_space.sample())
    assert env.observation_space.contains(obs) and np.isfinite(reward)
    assert isinstance(terminated, bool) and isinstance(truncated, bool)


@pytest.mark.parametrize("task", TASKS)
def test_make_passes_keyword_params_to_the_env(task):
    env = gym.make(ENV_IDS[task], window=3)
    assert env.unwrapped.params.window == 3
    assert env.unwrapped.obs_layout.window == 3


@pytest.mark.parametrize("task", TASKS)
def test_batched_twin_has_the_single_envs_spaces_and_layout(task):
    params = dataclasses.replace(PARAMS[task](), window=4)
    single = SINGLE_ENVS[task](params=params)
    batched = BATCHED_ENVS[task](num_envs=2, device="cpu", params=params)
    assert batched.single_observation_space == single.observation_space
    assert batched.single_action_space == single.action_space
    assert batched.obs_layout == single.obs_layout
    assert tuple(batched.reset(seed=0).shape) == (2, single.obs_layout.size)
