"""B copies of the portfolio-management env stepped at once on torch tensors.

Same semantics as `PortfolioManagementEnv` (see its docstring for the action rule, the accounting
and the timing); copy i fed the same actions as a single env matches it step by step to float64
rounding. Protocol (auto-reset, info["final_obs"]) in engine/envs/base.py.

Speed comes from doing the per-bar work once: at construction the clipped, flattened feature
window of every decision bar is laid out as one (bars, obs_dim) float32 table on the device, so
building B observations is one index_select plus writing the weights; the accounting is a handful
of (B, N+1) float64 tensor ops with no Python loop over copies.
"""
from __future__ import annotations

import numpy as np
import torch

from engine.data.market import MarketData
from engine.device import resolve_device
from engine.envs._common import (
    BAD_ACTIONS,
    BAD_NUM_ENVS,
    StartPositions,
    check_close,
    episode_bars,
    resolve_params,
    window_table,
)
from engine.envs.base import ObsLayout
from engine.envs.portfolio import MIN_GROWTH, PortfolioParams, default_market, pin_bound, portfolio_spaces, weight_clip


def rebalance_factors(w: torch.Tensor, d: torch.Tensor, cost_rate: float) -> torch.Tensor:
    """(B,) V_after / V of rebalancing each row from d to w (B, N+1, cash first):
    engine.envs.portfolio.rebalance_factor, row-wise, in w's dtype.

    Newton's steps stop once every row has reached its root; a row that has stays put (f <= 0).
    Differentiable in w and d (EIIE climbs it): on the linear piece holding the root, the last step
    taken is the root as a function of w and d, so its gradient is the root's."""
    w, d = w[:, 1:], d[:, 1:]
    if cost_rate == 0.0:
        return torch.ones(w.shape[0], dtype=w.dtype, device=w.device)
    # engine.envs.portfolio.rebalance_start, row-wise: at or above the root, within O(c^2) of it.
    tolerance = 8 * torch.finfo(w.dtype).eps
    gross = w.abs().sum(dim=1)
    mu = ((1.0 - cost_rate * (w - d).abs().sum(dim=1) + cost_rate * gross) / (1.0 + cost_rate * gross)).clamp_max(1.0)
    for _ in range(w.shape[1] + 2):
        gap = w * mu.unsqueeze(1) - d
        f = mu - 1.0 + cost_rate * gap.abs().sum(dim=1)
        moving = f > tolerance  # at the root but for rounding, which a step could not move
        if not bool(moving.any()):
            break
        # The left derivative: at a kink (gap 0) the slope of the segment Newton moves into.
        side = torch.where(gap == 0.0, -torch.sign(w), torch.sign(gap)).detach()
        mu = torch.where(moving, mu - f / (1.0 + cost_rate * (w * side).sum(dim=1)), mu)
    return mu


class BatchedPortfolioManagementEnv:
    """`num_envs` copies of PortfolioManagementEnv on `device`.

    step(actions): actions (B, N+1) float tensor (logits, cash first), finite (not checked, for
    speed). Returns obs (B, obs_dim) float32, reward (B,) float32, terminated and truncated (B,)
    bool, and info with float64 tensors of the step just taken: "portfolio_value" (B,), "return"
    (B,), "turnover" (B,), "cost" (B,, currency), "weights" (B, N+1, after the rebalance),
    "price_relatives" (B, N+1, cash first), plus "final_obs" (B, obs_dim; rows of copies that did
    not end are undefined). Copies that end are reset at once: to the first decision bar, or to a
    random start drawn from a torch.Generator seeded by `reset(seed=...)` when episode_length is set.
    """

    def __init__(self, market: MarketData | None = None, *, num_envs: int, device: str | torch.device = "auto",
                 start: int | None = None, end: int | None = None, params: PortfolioParams | None = None,
                 **kwargs):
        self.params = p = resolve_params(PortfolioParams, params, kwargs)
        if int(num_envs) < 1:
            raise ValueError(BAD_NUM_ENVS.format(num_envs=num_envs))
        self.num_envs = int(num_envs)
        self.device = resolve_device(device)
        self.market = default_market() if market is None else market
        self.bars = episode_bars(len(self.market), start, end, p.window, p.episode_length)
        n, f = self.market.n_assets, self.market.n_features
        self.obs_layout = ObsLayout(window=p.window, n_assets=n, n_features=f, n_extra=n + 1)
        self.single_action_space, self.single_observation_space = portfolio_spaces(self.obs_layout, p)
        check_close(self.market, self.bars.first - p.window + 1, self.bars.end)

        # Positions count decision bars from the first one: position k is bar first + k. The last
        # position (bar end-1) is only ever observed, never stepped from.
        self._last_pos = self.bars.end - 1 - self.bars.first
        self._table = self._observation_table().to(self.device)
        close = np.asarray(self.market.close[self.bars.first:self.bars.end], dtype=np.float64)
        rel = np.ones((len(close) - 1, n + 1))
        rel[:, 1:] = close[1:] / close[:-1]
        self._rel = torch.from_numpy(rel).to(self.device)

        b = self.num_envs
        self._bound = float(p.logit_bound)
        self._pin = pin_bound(p.logit_bound)
        self._weight_clip = weight_clip(p.long_only)
        self._cash_only = torch.zeros(n + 1, dtype=torch.float64, device=self.device)
        self._cash_only[0] = 1.0
        self._starts = StartPositions(num_envs=b, last_start=self.bars.last_start - self.bars.first,
                                      random=p.episode_length is not None, device=self.device)
        self._pos = torch.zeros(b, dtype=torch.int64, device=self.device)
        self._steps = torch.zeros(b, dtype=torch.int64, device=self.device)
        self._value = torch.full((b,), float(p.initial_cash), dtype=torch.float64, device=self.device)
        self._weights = self._cash_only.expand(b, n + 1).clone()

    def _observation_table(self) -> torch.Tensor:
        """(positions, obs_dim) float32: row k is the clipped, flattened feature window ending at
        bar first + k, followed by N+1 zero columns that each step overwrites with the weights (so
        an observation is one row lookup)."""
        windows = window_table(self.market, self.bars, self.params.window)
        table = np.zeros((windows.shape[0], self.obs_layout.size), dtype=np.float32)
        table[:, :windows.shape[1]] = windows
        return torch.from_numpy(table)

    def _observe(self, pos: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        obs = self._table.index_select(0, pos)
        extra = obs[:, self.obs_layout.market_size:]
        extra.copy_(weights.clamp(*self._weight_clip))
        return obs

    def reset(self, *, seed: int | None = None) -> torch.Tensor:
        self._starts.seed(seed)
        self._pos = self._starts.draw()
        self._steps.zero_()
        self._value.fill_(float(self.params.initial_cash))
        self._weights.copy_(self._cash_only.expand_as(self._weights))
        return self._observe(self._pos, self._weights)

    def target_weights(self, actions: torch.Tensor) -> torch.Tensor:
        """(B, N+1) float64 target weights of (B, N+1) actions: the rule of
        engine.envs.portfolio.target_weights, row-wise."""
        a = actions.to(device=self.device, dtype=torch.float64)
        pinned = a <= -self._pin
        a = a.clamp(-self._bound, self._bound)
        if self.params.long_only:
            z = a.masked_fill(pinned, float("-inf"))
            # All pinned: equal weights, which is the softmax of equal logits.
            z = z.masked_fill(pinned.all(dim=1, keepdim=True), 0.0)
            return torch.softmax(z, dim=1)
        r = a[:, 1:] / self._bound
        risky = r / r.abs().sum(dim=1, keepdim=True).clamp_min(1.0)
        return torch.cat((1.0 - risky.sum(dim=1, keepdim=True), risky), dim=1)

    def rebalance_factor(self, w: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
        """(B,) float64 V_after / V of each row (see rebalance_factors)."""
        return rebalance_factors(w, d, float(self.params.transaction_cost))

    def step(self, actions: torch.Tensor):
        expected = (self.num_envs, self.obs_layout.n_extra)
        if tuple(actions.shape) != expected:
            raise ValueError(BAD_ACTIONS.format(expected=expected, got=tuple(actions.shape)))
        p = self.params
        d, value = self._weights, self._value
        w = self.target_weights(actions)
        hold = (w - d).abs().amax(dim=1, keepdim=True) <= p.no_trade_band
        w = torch.where(hold, d, w)
        mu = self.rebalance_factor(w, d)
        turnover = (w[:, 1:] - d[:, 1:] / mu.unsqueeze(1)).abs().sum(dim=1)
        after = value * mu
        cost = value - after
        y = self._rel.index_select(0, self._pos)
        wy = w * y
        growth = wy.sum(dim=1)
        new_value = after * growth
        ruined = (after <= 0.0) | (new_value <= 0.0)
        # On ruin the weights are meaningless (growth may be 0); keep the target instead of dividing.
        new_weights = torch.where(ruined.unsqueeze(1), w, wy / growth.unsqueeze(1))
        ratio = new_value / value
        reward = ratio.clamp_min(MIN_GROWTH).log().float()
        pos = self._pos + 1
        steps = self._steps + 1
        at_end = pos == self._last_pos
        if p.episode_length is not None:
            at_end |= steps == p.episode_length
        terminated = ruined
        truncated = at_end & ~ruined
        done = terminated | truncated

        # Auto-reset, without a Python branch on which copies ended.
        done_col = done.unsqueeze(1)
        self._pos = torch.where(done, self._starts.draw(), pos)
        self._steps = torch.where(done, 0, steps)
        self._value = torch.where(done, float(p.initial_cash), new_value)
        self._weights = torch.where(done_col, self._cash_only, new_weights)
        obs = self._observe(self._pos, self._weights)
        info = {
            "portfolio_value": new_value,
            "return": ratio - 1.0,
            "turnover": turnover,
            "cost": cost,
            "weights": w,
            "price_relatives": y,
            "final_obs": self._final_obs(done, pos, new_weights),
        }
        return obs, reward, terminated, truncated, info

    def _final_obs(self, done: torch.Tensor, pos: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        if self.device.type != "cpu":
            # Finding the ended rows would synchronise with the accelerator every step; building
            # every row is cheaper there.
            return self._observe(pos, weights)
        # On the CPU only the ended rows are built: the others are undefined by the protocol, and
        # building all B rows would double the cost of a step.
        final = torch.empty((self.num_envs, self.obs_layout.size), dtype=torch.float32, device=self.device)
        rows = done.nonzero().squeeze(1)
        if rows.numel():
            final[rows] = self._observe(pos[rows], weights[rows])
        return final
