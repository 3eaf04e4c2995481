"""B copies of the order-execution env stepped at once on torch tensors.

Same semantics as `OrderExecutionEnv` (see its docstring for the impact model, the reward and the
timing); copy i fed the same actions as a single env matches it step by step to float64 rounding.
Protocol (auto-reset, info["final_obs"]) in engine/envs/base.py.

The clipped, flattened feature window of every decision bar is laid out once as a (bars, W*F)
float32 table on the device, so building B observations is one index_select plus the three order
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
    one_asset,
    resolve_params,
    window_table,
)
from engine.envs.base import ObsLayout
from engine.envs.execution import (
    N_EXTRA,
    TASK_NAME,
    ExecutionParams,
    bar_liquidity,
    execution_bars,
    execution_spaces,
    side_sign,
)


class BatchedOrderExecutionEnv:
    """`num_envs` copies of OrderExecutionEnv on `device`.

    step(actions): actions (B, 1) float tensor, the fraction of the remaining quantity to trade
    (clipped to [0, 1]; finiteness not checked, for speed). Returns obs (B, W*F + 3) float32,
    reward (B,) float32, terminated and truncated (B,) bool (truncated is always False, as in the
    single env), and info with float64 tensors of the step just taken: "executed" (B,, shares),
    "exec_price" (B,), "remaining" (B,), "shortfall" (B,, cumulative, currency), "proceeds" (B,,
    cumulative signed cash), plus "final_obs" (B, obs_dim; rows of copies that did not end are
    undefined). Copies that end are reset at once: to the first decision bar, or with random_start
    to a start drawn from a torch.Generator seeded by `reset(seed=...)`.
    """

    def __init__(self, market: MarketData | None = None, *, num_envs: int, device: str | torch.device = "auto",
                 start: int | None = None, end: int | None = None, params: ExecutionParams | None = None,
                 **kwargs):
        self.params = p = resolve_params(ExecutionParams, params, kwargs)
        if int(num_envs) < 1:
            raise ValueError(BAD_NUM_ENVS.format(num_envs=num_envs))
        self.num_envs = b = int(num_envs)
        self.device = resolve_device(device)
        self.market = one_asset(default_market() if market is None else market, p.ticker, TASK_NAME)
        self.bars = execution_bars(len(self.market), start, end, p)
        self.obs_layout = ObsLayout(window=p.window, n_assets=1, n_features=self.market.n_features,
                                    n_extra=N_EXTRA)
        self.single_action_space, self.single_observation_space = execution_spaces(self.obs_layout)
        check_close(self.market, self.bars.first - p.window + 1, self.bars.end)

        # Positions count decision bars from the first one: position k is bar first + k.
        first, end = self.bars.first, self.bars.end
        self._table = torch.from_numpy(window_table(self.market, self.bars, p.window)).to(self.device)
        close = np.asarray(self.market.close[first:end, 0], dtype=np.float64)
        self._close = torch.from_numpy(close).to(self.device)
        liquidity = bar_liquidity(self.market, self.bars, p)[first:end]
        self._liquidity = torch.from_numpy(np.ascontiguousarray(liquidity)).to(self.device)
        self._sign = side_sign(p)

        self._starts = StartPositions(num_envs=b, last_start=self.bars.last_start - first,
                                      random=p.random_start, device=self.device)
        zeros = torch.zeros(b, dtype=torch.float64, device=self.device)
        self._pos = torch.zeros(b, dtype=torch.int64, device=self.device)
        self._steps = torch.zeros(b, dtype=torch.int64, device=self.device)
        self._arrival = self._close.index_select(0, self._pos)
        self._remaining = torch.full((b,), float(p.quantity), dtype=torch.float64, device=self.device)
        self._shortfall = zeros.clone()
        self._proceeds = zeros.clone()

    def _observe(self, pos, steps, remaining, arrival) -> torch.Tensor:
        p = self.params
        move = (self._close.index_select(0, pos) / arrival - 1.0).clamp(-1.0, OBS_CLIP)
        steps_left = (p.horizon - steps).to(torch.float64) / p.horizon
        extra = torch.stack((remaining / p.quantity, steps_left, move), dim=1)
        return torch.cat((self._table.index_select(0, pos), extra.float()), dim=1)

    def reset(self, *, seed: int | None = None) -> torch.Tensor:
        self._starts.seed(seed)
        self._pos = self._starts.draw()
        self._steps.zero_()
        self._arrival = self._close.index_select(0, self._pos)
        self._remaining.fill_(float(self.params.quantity))
        self._shortfall.zero_()
        self._proceeds.zero_()
        return self._observe(self._pos, self._steps, self._remaining, self._arrival)

    def step(self, actions: torch.Tensor):
        expected = (self.num_envs, 1)
        if tuple(actions.shape) != expected:
            raise ValueError(BAD_ACTIONS.format(expected=expected, got=tuple(actions.shape)))
        p, s = self.params, self._sign
        fraction = actions[:, 0].to(device=self.device, dtype=torch.float64).clamp(0.0, 1.0)
        pos, remaining, arrival = self._pos, self._remaining, self._arrival
        last = self._steps == p.horizon - 1
        q = torch.where(last, remaining, fraction * remaining)
        close = self._close.index_select(0, pos)
        price = (close * (1.0 + s * p.impact * q / self._liquidity.index_select(0, pos))).clamp_min(0.0)
        fee = p.transaction_cost * price * q
        increment = s * (price - arrival) * q + fee
        shortfall = self._shortfall + increment
        proceeds = self._proceeds + (-s * price * q - fee)
        new_remaining = torch.where(last, 0.0, remaining - q)
        new_pos = pos + 1
        steps = self._steps + 1
        reward = (-increment / (p.quantity * arrival)).float()
        terminated = new_remaining <= 0.0
        truncated = torch.zeros_like(terminated)

        # Auto-reset, without a Python branch on which copies ended.
        starts = self._starts.draw()
        self._pos = torch.where(terminated, starts, new_pos)
        self._steps = torch.where(terminated, 0, steps)
        self._arrival = torch.where(terminated, self._close.index_select(0, starts), arrival)
        self._remaining = torch.where(terminated, float(p.quantity), new_remaining)
        self._shortfall = torch.where(terminated, 0.0, shortfall)
        self._proceeds = torch.where(terminated, 0.0, proceeds)
        obs = self._observe(self._pos, self._steps, self._remaining, self._arrival)
        info = {
            "executed": q,
            "exec_price": price,
            "remaining": new_remaining,
            "shortfall": shortfall,
            "proceeds": proceeds,
            "final_obs": self._final_obs(terminated, new_pos, steps, new_remaining, arrival),
        }
        return obs, reward, terminated, truncated, info

    def _final_obs(self, done, pos, steps, remaining, arrival) -> torch.Tensor:
        if self.device.type != "cpu":
            # Finding the ended rows would synchronise with the accelerator every step; building
            # every row is cheaper there.
            return self._observe(pos, steps, remaining, arrival)
        # On the CPU only the ended rows are built: the others are undefined by the protocol.
        final = torch.empty((self.num_envs, self.obs_layout.size), dtype=torch.float32, device=self.device)
        rows = done.nonzero().squeeze(1)
        if rows.numel():
            final[rows] = self._observe(pos[rows], steps[rows], remaining[rows], arrival[rows])
        return final
