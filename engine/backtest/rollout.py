"""Run a policy deterministically over a range of bars and keep what happened at every step.

Shared by the trainer's evaluation on the valid split and by the backtest on the test split, so the
two measure the same thing.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from engine.data.market import MarketData


@dataclass
class Rollout:
    """One pass over bars [t0, end).

    values: net value after each step, with the initial value first (n + 1 entries, value[k] is the
        value at the close of bar t0 + k).
    rewards: the env's reward of each step (n).
    info: each info tensor of the env for copy 0, stacked over steps (n, ...), as numpy.
    obs_extra: the account part of the observation each action was chosen on (n, n_extra).
    bars: bar index of each value (n + 1).
    """

    values: np.ndarray
    rewards: np.ndarray
    bars: np.ndarray
    info: dict[str, np.ndarray] = field(default_factory=dict)
    obs_extra: np.ndarray | None = None

    @property
    def returns(self) -> np.ndarray:
        return self.values[1:] / self.values[:-1] - 1.0


def first_decision_bar(start: int, window: int) -> int:
    return max(start, window - 1)


@torch.no_grad()
def rollout(agent, env, *, initial_value: float, start_bar: int, seed: int = 0) -> Rollout:
    """Step a one-copy batched env with `agent.act(deterministic=True)` until its episode ends.

    `initial_value` is the value before the first step (initial cash, or the order's notional).
    """
    if env.num_envs != 1:
        raise ValueError(f"rollout needs a one-copy env, got num_envs={env.num_envs}")
    n_extra = env.obs_layout.n_extra
    obs = env.reset(seed=seed)
    values, rewards, extras, infos = [initial_value], [], [], {}
    while True:
        extras.append(obs[0, obs.shape[1] - n_extra:].double().cpu().numpy())
        obs_next, reward, terminated, truncated, info = env.step(agent.act(obs, deterministic=True))
        rewards.append(float(reward[0]))
        for key, value in info.items():
            if key == "final_obs" or not torch.is_tensor(value):
                continue
            infos.setdefault(key, []).append(value[0].double().cpu().numpy())
        if "portfolio_value" in info:
            values.append(float(info["portfolio_value"][0]))
        if bool(terminated[0]) or bool(truncated[0]):
            break
        obs = obs_next
    n = len(rewards)
    return Rollout(
        values=np.asarray(values, dtype=np.float64),
        rewards=np.asarray(rewards, dtype=np.float64),
        bars=np.arange(start_bar, start_bar + n + 1),
        info={k: np.stack(v) for k, v in infos.items()},
        obs_extra=np.stack(extras),
    )


def bar_dates(market: MarketData, bars: np.ndarray) -> list[str]:
    return [str(np.datetime_as_string(market.dates[b], unit="s")).replace("T00:00:00", "") for b in bars]
