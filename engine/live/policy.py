"""A trained checkpoint deciding, at each closed bar, the orders that move an account to its targets.

The observation is built by the envs' own code from the feed's market and the broker's account, and
the action becomes targets by the envs' own rules (engine.envs.portfolio.target_weights and
rebalance_factor, engine.envs.trading.target_shares and order_trade), so a paper account trading a
policy at the decision bars' closes holds what the backtest's env held, bar for bar.

    policy = Policy.load(config, checkpoint="runs/42/best.pt", market=market)
    requests = policy.orders(market, t=bar.index, account=broker.account(), prices=bar.close,
                             id_prefix="d7")
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from engine.agents import AGENTS, Agent
from engine.config import RunConfig
from engine.data.market import MarketData
from engine.envs import make_env
from engine.envs._common import EpisodeBars, window_table
from engine.envs.portfolio import rebalance_factor, target_weights, weight_clip
from engine.envs.trading import account_obs, order_trade, target_shares
from engine.live.orders import Account, OrderRequest

# Tasks a deployment can trade: those whose actions are positions to hold. Order execution works
# one parent order at a time, which is not a strategy to run forward.
DEPLOYABLE_TASKS = ("portfolio_management", "algorithmic_trading")
NOT_DEPLOYABLE = "task {task!r} cannot be deployed; deployable tasks: {tasks}"
# An order smaller than this fraction of the account's value is float rounding of a target that did not
# move (the envs trade it too, but it changes the value by less than 1e-14): no venue would take it.
ORDER_DUST = 1e-12


@dataclass(frozen=True)
class Targets:
    """What the policy wants held after the bar: units per symbol (aligned with the market's tickers)."""

    quantities: np.ndarray
    action: np.ndarray


class Policy:
    """A config's agent with a checkpoint's weights, acting deterministically on one observation."""

    def __init__(self, config: RunConfig, agent: Agent, market: MarketData, *, device: torch.device):
        if config.task not in DEPLOYABLE_TASKS:
            raise ValueError(NOT_DEPLOYABLE.format(task=config.task, tasks=", ".join(DEPLOYABLE_TASKS)))
        self.config, self.agent, self.device = config, agent, device
        self.params = config.env_params()
        self.task = config.task
        self.market = market
        self.symbols = tuple(market.tickers)

    @classmethod
    def load(cls, config: RunConfig, *, checkpoint: str | Path | None, market: MarketData,
             device: str | torch.device = "cpu") -> Policy:
        """The agent of `config` on `market` (the traded market: one ticker for algorithmic trading),
        with `checkpoint`'s weights (None: the agent as it starts, which is all a baseline has)."""
        params = config.env_params()
        env = make_env(config.task, market, range(0, len(market)), params, num_envs=1, device=device)
        agent = AGENTS[config.agent](env, config.agent_params_obj(), device=device, seed=config.trainer.seed)
        if checkpoint is not None:
            agent.load(checkpoint, restore_rng=False)
        return cls(config, agent, env.market, device=torch.device(device))

    @staticmethod
    def traded_market(config: RunConfig, market: MarketData) -> MarketData:
        """The part of `market` a deployment of `config` trades (the env's own choice of ticker)."""
        env = make_env(config.task, market, range(0, len(market)), config.env_params(), num_envs=1, device="cpu")
        return env.market

    def observation(self, market: MarketData, t: int, account: Account, prices: np.ndarray) -> np.ndarray:
        """The env's observation at decision bar t for `account` at `prices` (the closes of bar t)."""
        window = self.params.window
        row = window_table(market, EpisodeBars(start=t, end=t + 1, first=t, last_start=t), window)[0]
        if self.task == "portfolio_management":
            extra = np.clip(self.weights(account, prices), *weight_clip(self.params.long_only)).astype(np.float32)
        else:
            shares = account.positions.get(self.symbols[0], 0.0)
            extra = account_obs(shares, account.cash, float(prices[0]))
        return np.concatenate((row, extra))

    def weights(self, account: Account, prices: np.ndarray) -> np.ndarray:
        """(N+1,) float64 weights of the account's value, cash first (zeros when it has no value)."""
        held = np.array([account.positions.get(s, 0.0) for s in self.symbols]) * prices
        value = account.cash + float(held.sum())
        if value <= 0.0:
            return np.zeros(len(self.symbols) + 1)
        return np.concatenate(([account.cash / value], held / value))

    @torch.no_grad()
    def act(self, obs: np.ndarray) -> np.ndarray:
        action = self.agent.act(torch.as_tensor(obs, device=self.device).unsqueeze(0), deterministic=True)
        return action[0].cpu().numpy()

    def targets(self, market: MarketData, t: int, account: Account, prices: np.ndarray) -> Targets | None:
        """Units to hold per symbol after bar t, or None to leave the book as it is."""
        action = self.act(self.observation(market, t, account, prices))
        if self.task == "portfolio_management":
            return self._portfolio_targets(action, account, prices)
        return self._trading_targets(action, account, float(prices[0]))

    def _portfolio_targets(self, action: np.ndarray, account: Account, prices: np.ndarray) -> Targets | None:
        p = self.params
        d = self.weights(account, prices)
        w = target_weights(np.asarray(action, dtype=np.float64), p)
        if np.abs(w - d).max() <= p.no_trade_band:
            return None
        value = account.cash + float((np.array([account.positions.get(s, 0.0) for s in self.symbols]) * prices).sum())
        after = value * rebalance_factor(w, d, p.transaction_cost)
        return Targets(quantities=w[1:] * after / prices, action=action)

    def _trading_targets(self, action: np.ndarray, account: Account, price: float) -> Targets:
        p = self.params
        a = int(np.asarray(action).reshape(-1)[0])
        shares = account.positions.get(self.symbols[0], 0.0)
        if p.action_mode == "target":
            exposures = (0.0, 1.0) if p.long_only else (-1.0, 0.0, 1.0)
            target = target_shares(exposures[a], shares, account.cash, price, p.transaction_cost)
        else:
            target = shares + order_trade(a, shares, account.cash, price, p)
        return Targets(quantities=np.array([target]), action=np.asarray(action))

    def orders(self, market: MarketData, t: int, account: Account, prices: np.ndarray, *,
               id_prefix: str, adjust: Adjust | None = None) -> list[OrderRequest]:
        """The market orders that take `account` to the policy's targets at bar t (after `adjust`, the
        risk limits' clipping, when given). Client order ids are `{id_prefix}b{t}s{i}`: the same bar
        decided again (after a restart) asks for the same ids, which a broker places only once."""
        targets = self.targets(market, t, account, prices)
        if targets is None and adjust is None:
            return []
        held = {s: account.positions.get(s, 0.0) for s in self.symbols}
        wanted = held if targets is None else dict(zip(self.symbols, map(float, targets.quantities), strict=True))
        if adjust is not None:
            wanted = adjust(wanted)
        return orders_for_targets(wanted, account, dict(zip(self.symbols, map(float, prices), strict=True)),
                                  id_prefix=f"{id_prefix}b{t}")


# What the risk limits make of a policy's targets: units per symbol in, units per symbol out.
Adjust = Callable[[dict[str, float]], dict[str, float]]


def orders_for_targets(targets: dict[str, float], account: Account, prices: dict[str, float], *,
                       id_prefix: str) -> list[OrderRequest]:
    """Market orders taking `account` to `targets` (units per symbol), client ids `{id_prefix}s{i}` (i the
    symbol's place in `targets`). Orders that reduce a position come first, so their proceeds pay for the
    rest and a limit checked on the way is never crossed by the order of sending. A move worth less
    than ORDER_DUST of the account is float noise, not an order."""
    value = abs(account.equity({s: prices[s] for s in account.positions if account.positions[s]}))
    reducing, growing = [], []
    for i, (symbol, target) in enumerate(targets.items()):
        current = account.positions.get(symbol, 0.0)
        delta = target - current
        if delta == 0.0 or abs(delta) * prices[symbol] <= ORDER_DUST * value:
            continue
        request = OrderRequest(client_order_id=f"{id_prefix}s{i}", symbol=symbol,
                               side="buy" if delta > 0 else "sell", quantity=abs(delta))
        shrinks = abs(target) < abs(current) and target * current >= 0.0
        (reducing if shrinks else growing).append(request)
    return reducing + growing
