"""B copies of the algorithmic-trading env stepped at once on torch tensors.

Same semantics as `AlgorithmicTradingEnv` (see its docstring for the actions, the accounting and the
timing); copy i fed the same actions as a single env matches it step by step to float64 rounding.
Protocol (auto-reset, info["final_obs"]) in engine/envs/base.py.

The clipped, flattened feature window of every decision bar is laid out once as a (bars, W*F)
float32 table on the device, so building B observations is one index_select plus the two account
values; the accounting is a few (B,) float64 tensor ops with no Python loop over copies.
"""
from __future__ import annotations

import numpy as np
import torch

from engine.data.market import MarketData
from engine.device import resolve_device
from engine.envs._common import (
    BAD_ACTIONS,
    BAD_NUM_ENVS,
    OBS_CLIP,
    StartPositions,
    check_close,
    default_market,
    episode_bars,
    one_asset,
    resolve_params,
    window_table,
)
from engine.envs.base import ObsLayout
from engine.envs.trading import N_EXTRA, TASK_NAME, TradingParams, trading_spaces


class BatchedAlgorithmicTradingEnv:
    """`num_envs` copies of AlgorithmicTradingEnv on `device`.

    step(actions): actions (B,) int64 tensor of action indices, in the action space (not checked,
    for speed). Returns obs (B, W*F + 2) float32, reward (B,) float32, terminated and truncated (B,)
    bool, and info with float64 tensors of the step just taken: "portfolio_value" (B,), "position"
    (B,, shares after the trade), "cash" (B,), "trade" (B,, signed shares), "price" (B,, close[t]),
    "cost" (B,, currency), plus "final_obs" (B, obs_dim; rows of copies that did not end are
    undefined). Copies that end are reset at once: to the first decision bar, or to a random start
    drawn from a torch.Generator seeded by `reset(seed=...)` when episode_length is set.
    """

    def __init__(self, market: MarketData | None = None, *, num_envs: int, device: str | torch.device = "auto",
                 start: int | None = None, end: int | None = None, params: TradingParams | None = None,
                 **kwargs):
        self.params = p = resolve_params(TradingParams, params, kwargs)
        if int(num_envs) < 1:
            raise ValueError(BAD_NUM_ENVS.format(num_envs=num_envs))
        self.num_envs = b = int(num_envs)
        self.device = resolve_device(device)
        self.market = one_asset(default_market() if market is None else market, p.ticker, TASK_NAME)
        self.bars = episode_bars(len(self.market), start, end, p.window, p.episode_length)
        self.obs_layout = ObsLayout(window=p.window, n_assets=1, n_features=self.market.n_features,
                                    n_extra=N_EXTRA)
        self.single_action_space, self.single_observation_space = trading_spaces(self.obs_layout, p)
        check_close(self.market, self.bars.first - p.window + 1, self.bars.end)

        # Positions count decision bars from the first one: position k is bar first + k. The last
        # position (bar end-1) is only ever observed, never stepped from.
        self._last_pos = self.bars.end - 1 - self.bars.first
        self._table = torch.from_numpy(window_table(self.market, self.bars, p.window)).to(self.device)
        close = np.asarray(self.market.close[self.bars.first:self.bars.end, 0], dtype=np.float64)
        self._close = torch.from_numpy(close).to(self.device)
        exposures = (0.0, 1.0) if p.long_only else (-1.0, 0.0, 1.0)
        self._exposures = torch.tensor(exposures, dtype=torch.float64, device=self.device)

        self._starts = StartPositions(num_envs=b, last_start=self.bars.last_start - self.bars.first,
                                      random=p.episode_length is not None, device=self.device)
        self._pos = torch.zeros(b, dtype=torch.int64, device=self.device)
        self._steps = torch.zeros(b, dtype=torch.int64, device=self.device)
        self._shares = torch.zeros(b, dtype=torch.float64, device=self.device)
        self._cash = torch.full((b,), float(p.initial_cash), dtype=torch.float64, device=self.device)

    def _observe(self, pos: torch.Tensor, shares: torch.Tensor, cash: torch.Tensor) -> torch.Tensor:
        """Rows of the window table followed by `engine.envs.trading.account_obs`, row-wise."""
        price = self._close.index_select(0, pos)
        held = shares * price
        value = cash + held
        alive = value > 0.0
        safe = torch.where(alive, value, 1.0)
        extra = torch.stack((held / safe, cash / safe), dim=1).clamp(-OBS_CLIP, OBS_CLIP)
        extra = torch.where(alive.unsqueeze(1), extra, 0.0)
        return torch.cat((self._table.index_select(0, pos), extra.float()), dim=1)

    def reset(self, *, seed: int | None = None) -> torch.Tensor:
        self._starts.seed(seed)
        self._pos = self._starts.draw()
        self._steps.zero_()
        self._shares.zero_()
        self._cash.fill_(float(self.params.initial_cash))
        return self._observe(self._pos, self._shares, self._cash)

    def _target_trade(self, a: torch.Tensor, shares, cash, price) -> torch.Tensor:
        """New shares: `engine.envs.trading.target_shares`, row-wise."""
        c = self.params.transaction_cost
        e = self._exposures.index_select(0, a)
        x = shares * price
        value = cash + x
        buy = x <= e * value
        # On the rows where e == 0 the denominators are 1 +- 0; those rows are replaced below.
        y_buy = e * (value + c * x) / (1.0 + e * c)
        y_sell = e * (value - c * x) / (1.0 - e * c)
        y = torch.where(buy, y_buy, y_sell) / price
        return torch.where(e == 0.0, 0.0, y)

    def _order_trade(self, a: torch.Tensor, shares, cash, price) -> torch.Tensor:
        """Signed shares: `engine.envs.trading.order_trade`, row-wise."""
        p = self.params
        notional = p.order_size * p.initial_cash
        buy = torch.clamp(cash.clamp_min(0.0) / (1.0 + p.transaction_cost), max=notional) / price
        sell = notional / price
        if p.long_only:
            sell = torch.minimum(sell, shares.clamp_min(0.0))
        return torch.where(a == 2, buy, torch.where(a == 0, -sell, 0.0))

    def step(self, actions: torch.Tensor):
        if tuple(actions.shape) != (self.num_envs,):
            raise ValueError(BAD_ACTIONS.format(expected=(self.num_envs,), got=tuple(actions.shape)))
        p = self.params
        a = actions.to(device=self.device, dtype=torch.int64)
        shares, cash, pos = self._shares, self._cash, self._pos
        price = self._close.index_select(0, pos)
        value = cash + shares * price
        if p.action_mode == "target":
            new_shares = self._target_trade(a, shares, cash, price)
            trade = new_shares - shares
        else:
            trade = self._order_trade(a, shares, cash, price)
            new_shares = shares + trade
        cost = p.transaction_cost * trade.abs() * price
        # No rule spends more than the cash, so a negative balance can only be float rounding.
        new_cash = (cash - trade * price - cost).clamp_min(0.0)
        new_pos = pos + 1
        steps = self._steps + 1
        new_value = new_cash + new_shares * self._close.index_select(0, new_pos)
        reward = ((new_value - value) / p.initial_cash).float()
        terminated = new_value <= 0.0
        at_end = new_pos == self._last_pos
        if p.episode_length is not None:
            at_end |= steps == p.episode_length
        truncated = at_end & ~terminated
        done = terminated | truncated

        # Auto-reset, without a Python branch on which copies ended.
        self._pos = torch.where(done, self._starts.draw(), new_pos)
        self._steps = torch.where(done, 0, steps)
        self._shares = torch.where(done, 0.0, new_shares)
        self._cash = torch.where(done, float(p.initial_cash), new_cash)
        obs = self._observe(self._pos, self._shares, self._cash)
        info = {
            "portfolio_value": new_value,
            "position": new_shares,
            "cash": new_cash,
            "trade": trade,
            "price": price,
            "cost": cost,
            "final_obs": self._final_obs(done, new_pos, new_shares, new_cash),
        }
        return obs, reward, terminated, truncated, info

    def _final_obs(self, done, pos, shares, cash) -> torch.Tensor:
        if self.device.type != "cpu":
            # Finding the ended rows would synchronise with the accelerator every step; building
            # every row is cheaper there.
            return self._observe(pos, shares, cash)
        # On the CPU only the ended rows are built: the others are undefined by the protocol.
        final = torch.empty((self.num_envs, self.obs_layout.size), dtype=torch.float32, device=self.device)
        rows = done.nonzero().squeeze(1)
        if rows.numel():
            final[rows] = self._observe(pos[rows], shares[rows], cash[rows])
        return final
