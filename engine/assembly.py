"""The parts of a run, built from its RunConfig: what the trainer trains and a backtest evaluates.

Building them is one function so that training and backtesting cannot drift apart in how a config
becomes a market, splits, env parameters, a device and an agent.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from engine.agents import AGENTS, Agent
from engine.config import RunConfig, check_fits
from engine.data.catalog import load_dataset
from engine.data.market import MarketData
from engine.data.splits import Splits, split_market
from engine.device import resolve_device, seed_everything
from engine.envs import make_env
from engine.envs.base import BatchedEnv


@dataclass(frozen=True)
class RunParts:
    """A run before it runs.

    market: the data; splits: its train/valid/test bars.
    env_params: config.env as the task's params dataclass.
    device: where the env and the agent live.
    train_env: the batched env over the train split, which the agent was built on.
    agent: untrained, until the trainer trains it or a checkpoint is loaded into it.
    """

    config: RunConfig
    market: MarketData
    splits: Splits
    env_params: Any
    device: torch.device
    train_env: BatchedEnv
    agent: Agent


def assemble(config: RunConfig, *, market: MarketData | None = None, num_envs: int | None = None) -> RunParts:
    """The parts of a run of `config`, on `market` (default: the dataset config.dataset names).

    num_envs: copies of the train env (default config.trainer.num_envs; a backtest needs one).
    Seeds every global RNG with the config's seed before the env and the agent are built, so the
    same config gives the same parts. A window too long for a split raises pydantic's
    ValidationError at ("env", "window").
    """
    if market is None:
        market = load_dataset(config.dataset, task=config.task)
    splits = split_market(market, **config.split.as_kwargs())
    check_fits(config, {name: len(getattr(splits, name)) for name in ("train", "valid", "test")})
    device = resolve_device(config.trainer.device)
    env_params = config.env_params()
    seed_everything(config.trainer.seed)
    train_env = make_env(config.task, market, splits.train, env_params,
                         num_envs=config.trainer.num_envs if num_envs is None else num_envs, device=device)
    agent = AGENTS[config.agent](train_env, config.agent_params_obj(), device=device, seed=config.trainer.seed)
    return RunParts(config=config, market=market, splits=splits, env_params=env_params, device=device,
                    train_env=train_env, agent=agent)
