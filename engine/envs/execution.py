"""Order execution: buy or sell a fixed quantity of one asset within a horizon, at the least cost.

The single gymnasium env lives here with the pieces its batched torch twin
(engine/envs/execution_batched.py) shares: the parameters, the bar range, the spaces and the
liquidity of each bar.
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
    EpisodeBars,
    check_close,
    default_market,
    episode_bars,
    iso_date,
    one_asset,
    resolve_params,
    window_table,
)
from engine.envs.base import ObsLayout

TASK_NAME = "order execution"
BAD_ACTION = "action must be a finite array of shape (1,), got {got!r}"
HORIZON_TOO_LONG = (
    "horizon {horizon} does not fit bars [{start}, {end}): from the first decision bar {first} there "
    "are only {steps} steps to the last bar"
)
BAD_VOLUME = (
    "use_volume: the volume must be finite and > 0 at every bar the env executes on (bar {bar} has "
    "{value}); pass use_volume=False to use bar_liquidity instead"
)
# remaining / quantity, steps_left / horizon, close[t] / arrival - 1
N_EXTRA = 3


# Unknown names are errors: a misspelt gymnasium.make keyword must not be silently ignored.
@pydantic_dataclass(config=ConfigDict(extra="forbid"))
class ExecutionParams:
    """Parameters of the order-execution env (single and batched)."""

    window: int = Field(10, ge=1, description="Bars of market features in each observation")
    side: Literal["sell", "buy"] = Field("sell", description="Whether the order sells or buys the quantity")
    quantity: float = Field(1000.0, gt=0, description="Shares to execute over the horizon")
    horizon: int = Field(20, ge=1, description="Steps (bars) to complete the order in; the last one trades the rest")
    impact: float = Field(
        0.1, ge=0,
        description="Temporary impact eta: the fill moves eta * participation (q / bar liquidity) of the price",
    )
    bar_liquidity: float | None = Field(
        None, gt=0, description="Shares one bar absorbs when volume is not used; None: the order's quantity"
    )
    use_volume: bool = Field(True, description="Use the market's volume as each bar's liquidity when it has one")
    transaction_cost: float = Field(0.0, ge=0, lt=1, description="Proportional fee on the executed value")
    random_start: bool = Field(False, description="reset draws the start bar at random instead of the first one")
    ticker: str | None = Field(None, description="Which ticker to execute when the market has several")


def execution_bars(n_bars: int, start: int | None, end: int | None, params: ExecutionParams) -> EpisodeBars:
    """The bar range; ValueError naming `horizon` when an order cannot complete from the first bar.

    An order placed at bar s trades at bars s..s+horizon-1 and the episode ends standing at bar
    s+horizon, which must be a bar of the range; random starts go up to end - 1 - horizon.
    """
    bars = episode_bars(n_bars, start, end, params.window, params.horizon if params.random_start else None)
    steps = bars.end - 1 - bars.first
    if params.horizon > steps:
        raise ValueError(HORIZON_TOO_LONG.format(horizon=params.horizon, start=bars.start, end=bars.end,
                                                 first=bars.first, steps=steps))
    return bars


def bar_liquidity(market: MarketData, bars: EpisodeBars, params: ExecutionParams) -> np.ndarray:
    """L_t (float64, shape (T,), meaningful on bars [first, end)): the volume when use_volume and the
    market has one, else bar_liquidity (default: the order's quantity). Zero or missing volume at a
    bar the env executes on is a ValueError naming use_volume: the impact would be infinite."""
    volume = market.price("volume")
    if params.use_volume and volume is not None:
        liquidity = np.asarray(volume[:, 0], dtype=np.float64)
        used = liquidity[bars.first:bars.end - 1]
        bad = ~(np.isfinite(used) & (used > 0))
        if bad.any():
            k = int(np.argmax(bad))
            raise ValueError(BAD_VOLUME.format(bar=bars.first + k, value=used[k]))
        return liquidity
    fixed = params.quantity if params.bar_liquidity is None else params.bar_liquidity
    return np.full(len(market), float(fixed))


def execution_spaces(layout: ObsLayout) -> tuple[gym.spaces.Box, gym.spaces.Box]:
    """(action_space, observation_space) of one env copy."""
    action_space = gym.spaces.Box(0.0, 1.0, shape=(1,), dtype=np.float32)
    m = layout.market_size
    low = np.concatenate((np.full(m, -OBS_CLIP), [0.0, 0.0, -1.0])).astype(np.float32)
    high = np.concatenate((np.full(m, OBS_CLIP), [1.0, 1.0, OBS_CLIP])).astype(np.float32)
    return action_space, gym.spaces.Box(low, high, dtype=np.float32)


def side_sign(params: ExecutionParams) -> float:
    return 1.0 if params.side == "buy" else -1.0


class OrderExecutionEnv(gym.Env):
    """Execute a parent order of `quantity` shares (sell or buy) over `horizon` bars.

    ## Timing (the no-look-ahead contract)
    The observation at decision bar t holds the features of bars t-W+1..t and the order's state
    after bar t's close. The child order chosen on it is filled at bar t's close (with impact); the
    next observation is at bar t+1. Nothing observed at bar t depends on a bar > t. The order is
    placed at t0 = max(start, W-1) (history before `start` fills the window when it exists), or at a
    bar drawn by reset from `self.np_random` when random_start is set; arrival price = close[t0].

    ## Action Space
    `Box(0, 1, (1,), float32)`: the fraction of the remaining quantity to trade at this bar
    (clipped to [0, 1]). The last step of the horizon trades all the remainder whatever the action.

    ## Market impact (temporary, linear in participation, Almgren-Chriss style)
    Executing q shares at bar t fills at
        p~ = close[t] * (1 + s * impact * q / L_t),   s = +1 buy, -1 sell,
    L_t = volume[t] when use_volume and the market has volume, else bar_liquidity (default the
    order's quantity). The impact is temporary: later bars' prices are the market's, unaffected by
    earlier fills (no permanent impact). A sell's fill price is floored at 0 (reached only when
    impact * q / L_t >= 1).

    ## Observation Space
    float32 Box of W*F + 3 values: the window of the asset's features (bars t-W+1..t) in (W, 1, F)
    C order, clipped to [-10, 10], followed by [remaining / quantity, steps_left / horizon,
    close[t] / arrival - 1] (the last clipped to [-1, 10]). `obs_layout` describes it.

    ## Reward
    A step's implementation-shortfall increment, in currency, is
        dIS = s * (p~ - arrival) * q + fee,   fee = transaction_cost * p~ * q,
    and reward = -dIS / (quantity * arrival): the episode's rewards sum to minus the implementation
    shortfall as a fraction of the arrival notional (0 for filling everything at the arrival price
    without fees; positive when the market moved in the order's favour).

    ## Episode End
    terminated=True when the order is complete (nothing remains), at the latest on the horizon's
    last step. The constructor refuses a horizon that does not fit the bars after t0 (ValueError
    naming horizon) and random starts leave room for a whole horizon, so the data never runs out
    before the order completes: truncated is always False.

    ## Info
    executed (q), exec_price (p~), remaining (shares), shortfall (cumulative dIS, currency), cost
    (fee, currency), proceeds (cumulative signed cash of the execution: a sell's receipts net of
    fees, minus a buy's spend including fees), arrival_price, date (ISO string of bar t+1), bar
    (t+1). reset's info has remaining, shortfall, proceeds, arrival_price, date and bar of t0.

    A market with several tickers needs `ticker` to pick the one to execute.
    """

    metadata = {"render_modes": []}

    def __init__(self, market: MarketData | None = None, *, start: int | None = None, end: int | None = None,
                 params: ExecutionParams | None = None, **kwargs):
        self.params = p = resolve_params(ExecutionParams, params, kwargs)
        self.market = one_asset(default_market() if market is None else market, p.ticker, TASK_NAME)
        self.bars = execution_bars(len(self.market), start, end, p)
        self.obs_layout = ObsLayout(window=p.window, n_assets=1, n_features=self.market.n_features,
                                    n_extra=N_EXTRA)
        check_close(self.market, self.bars.first - p.window + 1, self.bars.end)
        self._table = window_table(self.market, self.bars, p.window)
        self._close = np.asarray(self.market.close[:, 0], dtype=np.float64)
        self._liquidity = bar_liquidity(self.market, self.bars, p)
        self._sign = side_sign(p)
        self.action_space, self.observation_space = execution_spaces(self.obs_layout)
        self._reset_order(self.bars.first)

    def _reset_order(self, t: int) -> None:
        self._t = t
        self._steps = 0
        self._arrival = float(self._close[t])
        self._remaining = float(self.params.quantity)
        self._shortfall = 0.0
        self._proceeds = 0.0

    def _obs(self) -> np.ndarray:
        p = self.params
        extra = np.array([
            self._remaining / p.quantity,
            (p.horizon - self._steps) / p.horizon,
            min(max(self._close[self._t] / self._arrival - 1.0, -1.0), OBS_CLIP),
        ]).astype(np.float32)
        return np.concatenate((self._table[self._t - self.bars.first], extra))

    def _date(self) -> str:
        return iso_date(self.market, self._t)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        b = self.bars
        t = b.first
        if self.params.random_start and b.last_start > b.first:
            t = int(self.np_random.integers(b.first, b.last_start + 1))
        self._reset_order(t)
        info = {"remaining": self._remaining, "shortfall": 0.0, "proceeds": 0.0, "arrival_price": self._arrival,
                "date": self._date(), "bar": t}
        return self._obs(), info

    def step(self, action):
        a = np.asarray(action, dtype=np.float64)
        if a.shape != (1,) or not np.isfinite(a).all():
            raise ValueError(BAD_ACTION.format(got=action))
        p, t, s = self.params, self._t, self._sign
        fraction = min(max(float(a[0]), 0.0), 1.0)
        last = p.horizon - self._steps == 1
        q = self._remaining if last else fraction * self._remaining
        price = max(float(self._close[t]) * (1.0 + s * p.impact * q / float(self._liquidity[t])), 0.0)
        fee = p.transaction_cost * price * q
        increment = s * (price - self._arrival) * q + fee
        self._shortfall += increment
        self._proceeds += -s * price * q - fee
        self._remaining = 0.0 if last else self._remaining - q
        self._t = t + 1
        self._steps += 1
        reward = -increment / (p.quantity * self._arrival)
        info = {
            "executed": q,
            "exec_price": price,
            "remaining": self._remaining,
            "shortfall": self._shortfall,
            "cost": fee,
            "proceeds": self._proceeds,
            "arrival_price": self._arrival,
            "date": self._date(),
            "bar": self._t,
        }
        return self._obs(), float(reward), bool(self._remaining <= 0.0), False, info
