"""Algorithmic trading: hold one asset long, flat or short, deciding at every bar.

The single gymnasium env lives here with the pieces its batched torch twin
(engine/envs/trading_batched.py) shares: the parameters, the spaces and the observation's account
part. The trade rules are written twice (numpy here, torch there) and tested equal.
"""
from __future__ import annotations

from typing import Literal

import gymnasium as gym
import numpy as np
from pydantic import ConfigDict, Field
from pydantic.dataclasses import dataclass as pydantic_dataclass

from engine.data.market import MarketData
from engine.envs._common import (
    OBS_CLIP,
    check_close,
    default_market,
    episode_bars,
    iso_date,
    one_asset,
    resolve_params,
    window_table,
)
from engine.envs.base import ObsLayout

TASK_NAME = "algorithmic trading"
BAD_ACTION = "action must be one of {choices}, got {got!r}"
# position value / V and cash / V
N_EXTRA = 2


# Unknown names are errors: a misspelt gymnasium.make keyword must not be silently ignored.
@pydantic_dataclass(config=ConfigDict(extra="forbid"))
class TradingParams:
    """Parameters of the algorithmic-trading env (single and batched)."""

    window: int = Field(10, ge=1, description="Bars of market features in each observation")
    initial_cash: float = Field(1_000_000.0, gt=0, description="Account value at the start of an episode (currency)")
    transaction_cost: float = Field(
        0.001, ge=0, lt=1, description="Proportional cost of the traded value (0.001 = 10 bps), paid from cash"
    )
    action_mode: Literal["target", "order"] = Field(
        "target", description="target: choose the exposure (flat/long[/short]); order: sell, hold or buy a lot"
    )
    long_only: bool = Field(True, description="True: holdings never go below zero shares")
    order_size: float = Field(
        0.1, gt=0, description="Order mode: one order trades shares worth order_size * initial_cash"
    )
    episode_length: int | None = Field(
        None, ge=1, description="Steps per episode from a random start bar; None: one pass over the whole range"
    )
    ticker: str | None = Field(None, description="Which ticker to trade when the market has several")


def trading_spaces(layout: ObsLayout, params: TradingParams) -> tuple[gym.spaces.Discrete, gym.spaces.Box]:
    """(action_space, observation_space) of one env copy."""
    n_actions = 2 if params.action_mode == "target" and params.long_only else 3
    size = layout.size
    low = np.full(size, -OBS_CLIP, dtype=np.float32)
    high = np.full(size, OBS_CLIP, dtype=np.float32)
    return gym.spaces.Discrete(n_actions), gym.spaces.Box(low, high, dtype=np.float32)


def account_obs(shares: float, cash: float, price: float) -> np.ndarray:
    """[shares * price / V, cash / V] clipped to [-10, 10], float32; zeros once V <= 0 (ruin),
    where the ratios mean nothing."""
    value = cash + shares * price
    if value <= 0.0:
        return np.zeros(N_EXTRA, dtype=np.float32)
    return np.clip(np.array([shares * price / value, cash / value]), -OBS_CLIP, OBS_CLIP).astype(np.float32)


def target_shares(exposure: float, shares: float, cash: float, price: float, cost_rate: float) -> float:
    """Shares y that make y * price = exposure * V', V' the net value after paying for the trade.

    With X = shares * price, Y = y * price and V = cash + X, Y solves
        Y = e * (V - c * |Y - X|),
    whose left minus right side grows with Y (c < 1), so the root is unique: it is >= X (a buy)
    exactly when X <= e * V, and then Y = e (V + c X) / (1 + e c); otherwise (a sell)
    Y = e (V - c X) / (1 - e c). Going long (e = +1) thus spends all the cash and no more.
    """
    if exposure == 0.0:
        return 0.0
    x = shares * price
    value = cash + x
    if x <= exposure * value:
        y = exposure * (value + cost_rate * x) / (1.0 + exposure * cost_rate)
    else:
        y = exposure * (value - cost_rate * x) / (1.0 - exposure * cost_rate)
    return y / price


def order_trade(action: int, shares: float, cash: float, price: float, params: TradingParams) -> float:
    """Signed shares traded by an order-mode action (0 sell, 1 hold, 2 buy); see the env docstring."""
    notional = params.order_size * params.initial_cash
    if action == 2:
        return min(notional, max(cash, 0.0) / (1.0 + params.transaction_cost)) / price
    if action == 0:
        sell = notional / price
        if params.long_only:
            sell = min(sell, max(shares, 0.0))
        return -sell
    return 0.0


class AlgorithmicTradingEnv(gym.Env):
    """Trade one asset against cash, deciding at every bar's close.

    ## Timing (the no-look-ahead contract)
    The observation at decision bar t holds the features of bars t-W+1..t and the account after bar
    t's close. The action chosen on it is filled at close[t] (market-on-close, costs charged then);
    its reward is realised at close[t+1]. Nothing observed at bar t depends on a bar > t. The first
    decision bar is t0 = max(start, W-1) (history before `start` fills the window when it exists).

    ## Action Space
    action_mode="target" (the action is the exposure to hold until the next bar):
    - long_only=True: `Discrete(2)`, 0 = flat, 1 = long.
    - long_only=False: `Discrete(3)`, 0 = short, 1 = flat, 2 = long.
    The exposure e in {-1, 0, +1} becomes shares y with y * close[t] = e * V', V' the net value
    after paying the trade's cost (see `target_shares`): long spends all the cash (never more),
    short holds -V' worth of shares and 2 V' in cash. The target is re-applied at every bar, so a
    long position (cash 0) never trades again while the action stays long, and a short is
    rebalanced to -1x of the current net value.
    action_mode="order": `Discrete(3)`, 0 = sell, 1 = hold, 2 = buy, with L = order_size *
    initial_cash:
    - buy: shares worth L at close[t], capped so that their price plus cost fits in the cash;
    - sell: shares worth L, capped at the shares held when long_only (so holdings never go
      negative); without long_only, sells past zero build a short.

    ## Observation Space
    float32 Box of W*F + 2 values: the window of the asset's features (bars t-W+1..t) in (W, 1, F)
    C order, clipped to [-10, 10], followed by [shares * close[t] / V, cash / V] (clipped to
    [-10, 10]; zeros after ruin). `obs_layout` describes it.

    ## Reward
    Net value V = cash + shares * close. A trade of d shares at bar t costs
    transaction_cost * |d| * close[t], paid from cash. With V_t the value before the trade and
    V_{t+1} = cash' + shares' * close[t+1]:
        reward = (V_{t+1} - V_t) / initial_cash,
    the change of net value, costs included, in units of the initial cash (so an episode's rewards
    sum to its profit over initial_cash).

    ## Episode End
    truncated=True on the step that reaches bar end-1, or after `episode_length` steps when set
    (reset then draws the start bar uniformly from the bars that leave room for a whole episode).
    terminated=True on ruin, V_{t+1} <= 0 (possible only when shorting).

    ## Info
    portfolio_value (V_{t+1}), position (shares after the trade), cash (after the trade), trade
    (signed shares), price (close[t], the fill price), cost (currency), date (ISO string of bar
    t+1), bar (t+1). reset's info has portfolio_value, position, cash, date and bar of t0.

    A market with several tickers needs `ticker` to pick the one to trade.
    """

    metadata = {"render_modes": []}

    def __init__(self, market: MarketData | None = None, *, start: int | None = None, end: int | None = None,
                 params: TradingParams | None = None, **kwargs):
        self.params = p = resolve_params(TradingParams, params, kwargs)
        self.market = one_asset(default_market() if market is None else market, p.ticker, TASK_NAME)
        self.bars = episode_bars(len(self.market), start, end, p.window, p.episode_length)
        self.obs_layout = ObsLayout(window=p.window, n_assets=1, n_features=self.market.n_features,
                                    n_extra=N_EXTRA)
        check_close(self.market, self.bars.first - p.window + 1, self.bars.end)
        self._table = window_table(self.market, self.bars, p.window)
        self._close = np.asarray(self.market.close[:, 0], dtype=np.float64)
        self.action_space, self.observation_space = trading_spaces(self.obs_layout, p)
        # Action index -> exposure, for target mode.
        self._exposures = (0.0, 1.0) if p.long_only else (-1.0, 0.0, 1.0)
        self._reset_account(self.bars.first)

    def _reset_account(self, t: int) -> None:
        self._t = t
        self._steps = 0
        self._shares = 0.0
        self._cash = float(self.params.initial_cash)

    def _value(self, t: int) -> float:
        return float(self._cash + self._shares * self._close[t])

    def _obs(self) -> np.ndarray:
        row = self._table[self._t - self.bars.first]
        return np.concatenate((row, account_obs(self._shares, self._cash, self._close[self._t])))

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        b = self.bars
        t = b.first
        if self.params.episode_length is not None and b.last_start > b.first:
            t = int(self.np_random.integers(b.first, b.last_start + 1))
        self._reset_account(t)
        info = {"portfolio_value": self._value(t), "position": 0.0, "cash": self._cash,
                "date": iso_date(self.market, t), "bar": t}
        return self._obs(), info

    def step(self, action):
        if not self.action_space.contains(action):
            raise ValueError(BAD_ACTION.format(choices=list(range(self.action_space.n)), got=action))
        a = int(action)
        p, t = self.params, self._t
        price = float(self._close[t])
        value = self._value(t)
        c = p.transaction_cost
        if p.action_mode == "target":
            new_shares = target_shares(self._exposures[a], self._shares, self._cash, price, c)
            trade = new_shares - self._shares
        else:
            trade = order_trade(a, self._shares, self._cash, price, p)
            new_shares = self._shares + trade
        cost = c * abs(trade) * price
        # No rule spends more than the cash (a long target or a capped buy spends exactly all of
        # it), so a negative balance can only be float rounding.
        cash = max(self._cash - trade * price - cost, 0.0)
        self._shares, self._cash = new_shares, cash
        self._t = t + 1
        self._steps += 1
        new_value = self._value(self._t)
        reward = (new_value - value) / p.initial_cash
        ruined = new_value <= 0.0
        at_end = self._t == self.bars.end - 1 or self._steps == p.episode_length
        info = {
            "portfolio_value": new_value,
            "position": new_shares,
            "cash": cash,
            "trade": trade,
            "price": price,
            "cost": cost,
            "date": iso_date(self.market, self._t),
            "bar": self._t,
        }
        return self._obs(), float(reward), bool(ruined), bool(at_end and not ruined), info
