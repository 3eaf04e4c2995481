"""Rule-based baselines: agents with `trainable = False` that every learned agent is measured against.

- buy_and_hold: portfolio management: equal dollar amounts of every asset at the first decision
  bar, then never trade (each later action asks for the drifted weights the account already holds);
  algorithmic trading: long from the first bar on.
- crp: portfolio management: the constant-rebalanced portfolio, equal weights over the risky assets
  and no cash, restored at every bar.
- random: every task: uniform samples of the action space.
- twap: order execution: an equal slice of the order every step.

A baseline holds no state about the episode: it reads what it needs (is this the first step? how
many steps are left?) from the observation, so it acts right on batched envs whose copies reset at
different times.
"""
from __future__ import annotations

from typing import ClassVar

import gymnasium as gym
import torch
from pydantic.dataclasses import dataclass

from engine.agents.base import ALL_TASKS, Agent
from engine.envs.base import BatchedEnv

UNSUPPORTED_ENV = "{agent} handles {tasks}; it cannot act on an env with action space {space}"

# An account whose cash weight is at least this is all cash: only the first step of an episode
# (buy_and_hold holds no cash afterwards). Observed weights are float32, hence the tolerance.
ALL_CASH = 1.0 - 1e-6
# Order-mode buy-and-hold stops buying once cash is below this share of the account (what a capped
# last buy leaves is float rounding).
ORDER_MODE_CASH_LEFT = 1e-6


@dataclass
class BaselineParams:
    """Baselines have no hyperparameters."""


def env_task(agent: str, tasks: frozenset[str], env: BatchedEnv) -> str:
    """Which of the three tasks `env` is, from its spaces and observation layout; ValueError naming
    the agent and the action space when it is none of `tasks`."""
    space, layout = env.single_action_space, env.obs_layout
    task = None
    if isinstance(space, gym.spaces.Discrete):
        task = "algorithmic_trading"
    elif isinstance(space, gym.spaces.Box) and len(space.shape) == 1:
        if space.shape == (layout.n_assets + 1,) and layout.n_extra == layout.n_assets + 1:
            task = "portfolio_management"
        elif space.shape == (1,) and layout.n_assets == 1 and layout.n_extra == 3:
            task = "order_execution"
    if task not in tasks:
        raise ValueError(UNSUPPORTED_ENV.format(agent=agent, tasks=", ".join(sorted(tasks)), space=space))
    return task


def portfolio_actions(weights: torch.Tensor, params) -> torch.Tensor:
    """Portfolio-env actions (B, N+1) float32 whose target weights are `weights` (B, N+1, cash
    first, on the simplex), for the env's `params` (logit_bound, long_only).

    long_only: logits log(w) - max log(w), so the largest weight gets logit 0 and the others keep
    full float32 precision in their ratios; a zero weight (or one more than e^logit_bound times
    smaller than the largest) gets -logit_bound, which the env pins to exactly 0.
    long-short: risky logits logit_bound * w_i; the env's rule then gives back w_i exactly (their
    absolute sum is at most 1) and the cash logit is unused.
    """
    bound = float(params.logit_bound)
    w = weights.to(torch.float64)
    if params.long_only:
        logw = w.log()
        logits = (logw - logw.max(dim=1, keepdim=True).values).clamp_min(-bound)
    else:
        logits = torch.cat((torch.zeros_like(w[:, :1]), bound * w[:, 1:]), dim=1)
    return logits.to(torch.float32)


class Baseline(Agent):
    """Shared construction: no parameters, the task read from the env, no learning."""

    trainable: ClassVar[bool] = False
    Params: ClassVar[type] = BaselineParams

    def __init__(self, env: BatchedEnv, params=None, *, device: str | torch.device = "auto", seed: int = 0):
        super().__init__(env, params, device=device, seed=seed)
        self.task = env_task(self.name, self.tasks, env)
        self.env_params = env.params
        self.n_assets = self.obs_layout.n_assets

    def _current_weights(self, obs: torch.Tensor) -> torch.Tensor:
        """Portfolio obs: the drifted weights (B, N+1), cash first, in float64."""
        return obs[:, obs.shape[1] - (self.n_assets + 1):].to(torch.float64)

    def _equal_risky_weights(self, b: int) -> torch.Tensor:
        w = torch.full((b, self.n_assets + 1), 1.0 / self.n_assets, dtype=torch.float64, device=self.device)
        w[:, 0] = 0.0
        return w


class BuyAndHold(Baseline):
    """Buy equal dollar amounts of every asset at the first bar and hold them.

    Portfolio management: on an all-cash observation (the first step of an episode) the target is
    [0, 1/N, ..., 1/N]; afterwards it is the drifted weights read from the observation, so the
    turnover is zero (up to float32 rounding of the observed weights) and no cost is paid after the
    first bar. Algorithmic trading: long from the first bar on (see `trading_buy_and_hold`).
    """

    name: ClassVar[str] = "buy_and_hold"
    tasks: ClassVar[frozenset[str]] = frozenset({"portfolio_management", "algorithmic_trading"})

    @torch.no_grad()
    def act(self, obs: torch.Tensor, deterministic: bool = True) -> torch.Tensor:
        obs = torch.as_tensor(obs, dtype=torch.float32, device=self.device)
        if self.task == "algorithmic_trading":
            return trading_buy_and_hold(obs, self.single_action_space, self.env_params)
        d = self._current_weights(obs)
        first = d[:, :1] >= ALL_CASH
        d = d.clone()
        d[:, 0] = 0.0  # no cash ever (after the first step there is none to keep anyway)
        target = torch.where(first, self._equal_risky_weights(obs.shape[0]), d)
        return portfolio_actions(target, self.env_params)


def trading_buy_and_hold(obs: torch.Tensor, space: gym.spaces.Discrete, params) -> torch.Tensor:
    """Trading actions (B,) int64 of buying and holding.

    Target mode: "long" (the last action index) at every bar; the env then buys with all the cash
    at the first bar and afterwards re-applies the long target with trades of float-rounding size
    only. Order mode (0 sell, 1 hold, 2 buy, in lots of
    order_size * initial_cash): buy while the observed cash share of the account is above
    ORDER_MODE_CASH_LEFT, hold afterwards: fully invested after about 1 / order_size bars.
    """
    if params.action_mode == "target":
        return torch.full((obs.shape[0],), int(space.n) - 1, dtype=torch.int64, device=obs.device)
    cash_share = obs[:, -1]
    return torch.where(cash_share > ORDER_MODE_CASH_LEFT, 2, 1).to(torch.int64)


class CRP(Baseline):
    """Constant rebalanced portfolio: equal weights over the risky assets, no cash, every bar."""

    name: ClassVar[str] = "crp"
    tasks: ClassVar[frozenset[str]] = frozenset({"portfolio_management"})

    @torch.no_grad()
    def act(self, obs: torch.Tensor, deterministic: bool = True) -> torch.Tensor:
        return portfolio_actions(self._equal_risky_weights(obs.shape[0]), self.env_params)


class RandomAgent(Baseline):
    """Uniform samples of the action space (every task), drawn from a generator seeded with the
    agent's seed; `deterministic` is ignored, a random policy has no mode worth showing."""

    name: ClassVar[str] = "random"
    tasks: ClassVar[frozenset[str]] = ALL_TASKS

    def __init__(self, env: BatchedEnv, params=None, *, device: str | torch.device = "auto", seed: int = 0):
        super().__init__(env, params, device=device, seed=seed)
        self._generator = torch.Generator(device=self.device)
        self._generator.manual_seed(seed)
        space = self.single_action_space
        if isinstance(space, gym.spaces.Box):
            self._low = torch.as_tensor(space.low, dtype=torch.float32, device=self.device)
            self._high = torch.as_tensor(space.high, dtype=torch.float32, device=self.device)

    @torch.no_grad()
    def act(self, obs: torch.Tensor, deterministic: bool = True) -> torch.Tensor:
        b, space, g = obs.shape[0], self.single_action_space, self._generator
        if isinstance(space, gym.spaces.Discrete):
            return torch.randint(int(space.n), (b,), generator=g, device=g.device).to(self.device) + int(space.start)
        u = torch.rand((b, *space.shape), generator=g, device=g.device).to(self.device)
        return torch.minimum(self._low + (self._high - self._low) * u, self._high)

    def state_dict(self) -> dict:
        return {"generator": self._generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        if "generator" in state:
            self._generator.set_state(state["generator"])


class TWAP(Baseline):
    """Time-weighted average price: trade 1/steps_left of the remaining quantity each step, which
    splits the order into equal slices over the horizon. steps_left is read from the observation
    (its steps_left / horizon value times the env's horizon)."""

    name: ClassVar[str] = "twap"
    tasks: ClassVar[frozenset[str]] = frozenset({"order_execution"})

    @torch.no_grad()
    def act(self, obs: torch.Tensor, deterministic: bool = True) -> torch.Tensor:
        obs = torch.as_tensor(obs, dtype=torch.float32, device=self.device)
        fraction_left = obs[:, -2].to(torch.float64)
        steps_left = (fraction_left * self.env_params.horizon).round().clamp_min(1.0)
        return (1.0 / steps_left).to(torch.float32).unsqueeze(1)
