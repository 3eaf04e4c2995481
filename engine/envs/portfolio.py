"""Portfolio management: spread the account over N assets and cash, rebalanced at every bar.

The single gymnasium env lives here with the pieces its batched torch twin
(engine/envs/portfolio_batched.py) shares: the parameters, the action -> target weights rule and
the observation spaces. The bar range, parameter resolution and feature clipping every env shares
are in engine/envs/_common.py.
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np
from pydantic import ConfigDict, Field
from pydantic.dataclasses import dataclass as pydantic_dataclass

from engine.data.market import MarketData
from engine.envs._common import OBS_CLIP, check_close, episode_bars, iso_date, resolve_params
from engine.envs._common import default_market as common_default_market
from engine.envs.base import ObsLayout

# Floor of V'/V inside the reward's log, so that ruin gives a large finite penalty (log 1e-9 ~ -20.7)
# instead of -inf or NaN.
MIN_GROWTH = 1e-9

BAD_ACTION = "action must be a finite array of shape {shape}, got {got}"


@pydantic_dataclass(config=ConfigDict(extra="forbid"))
class PortfolioParams:
    """Parameters of the portfolio-management env (single and batched)."""

    window: int = Field(10, ge=1, description="Bars of market features in each observation")
    initial_cash: float = Field(1_000_000.0, gt=0, description="Account value at the start of an episode (currency)")
    transaction_cost: float = Field(
        0.001, ge=0, lt=1, description="Proportional cost of the traded value (0.001 = 10 bps of turnover)"
    )
    long_only: bool = Field(
        True, description="True: softmax weights, no shorting or leverage. False: signed weights, gross exposure <= 1"
    )
    logit_bound: float = Field(10.0, gt=0, description="Actions are in [-logit_bound, logit_bound]")
    episode_length: int | None = Field(
        None, ge=1, description="Steps per episode from a random start bar; None: one pass over the whole range"
    )
    no_trade_band: float = Field(
        1e-6, ge=0, lt=1,
        description="A target within this distance of the current weights (largest absolute difference) is not "
        "traded and the book drifts instead, so float rounding of observed weights pays no cost",
    )


def default_market() -> MarketData:
    return common_default_market(n_assets=5)


def pin_bound(logit_bound: float) -> float:
    """The logit at or below which a weight is pinned to 0. The action space stores its bound as
    float32, so whichever of the float32 and float64 bounds is smaller counts: an action at the
    space's low pins whether it comes from the space (float32) or from code using the parameter."""
    return min(float(logit_bound), float(np.float32(logit_bound)))


def target_weights(action: np.ndarray, params: PortfolioParams) -> np.ndarray:
    """Target weights (N+1,), cash first, of one action; float64. See PortfolioManagementEnv."""
    bound = float(params.logit_bound)
    pinned = action <= -pin_bound(bound)
    a = np.clip(action, -bound, bound)
    if params.long_only:
        if pinned.all():
            return np.full(a.shape, 1.0 / a.shape[0])
        z = np.where(pinned, -np.inf, a)
        e = np.exp(z - z.max())
        return e / e.sum()
    r = a[1:] / bound
    risky = r / max(1.0, float(np.abs(r).sum()))
    return np.concatenate(([1.0 - risky.sum()], risky))


# f at mu's root, to float64 rounding: a few ulps of 1.
ROOT_TOLERANCE = 8 * float(np.finfo(np.float64).eps)


def rebalance_factor(w: np.ndarray, d: np.ndarray, cost_rate: float) -> float:
    """mu = V_after / V of rebalancing from drifted weights d to target weights w (cash first), paying
    `cost_rate` of every traded amount: the root of
        mu = 1 - cost_rate * sum_{i>=1} |w_i * mu - d_i|,
    i.e. the account a broker leaves after buying and selling exactly what makes each asset w_i of
    the value *after* fees, fees paid from cash (a self-financing rebalance). The right side minus
    mu decreases strictly (slope <= cost_rate * gross - 1 < 0), so the root is unique; f(mu) = mu - 1 +
    cost_rate * sum|w_i mu - d_i| is convex and piecewise linear, so Newton's method from mu = 1
    (where f >= 0) lands on it exactly after crossing at most one kink per asset.
    """
    w, d = w[1:], d[1:]
    mu = rebalance_start(float(np.abs(w - d).sum()), float(np.abs(w).sum()), cost_rate)
    for _ in range(len(w) + 2):
        gap = w * mu - d
        f = mu - 1.0 + cost_rate * float(np.abs(gap).sum())
        if f <= ROOT_TOLERANCE:  # at the root but for rounding, which a step could not move
            break
        # The left derivative: at a kink (gap 0) the slope of the segment Newton moves into.
        side = np.where(gap == 0.0, -np.sign(w), np.sign(gap))
        mu -= f / (1.0 + cost_rate * float((w * side).sum()))
    return mu


def rebalance_start(turnover: float, gross: float, cost_rate: float) -> float:
    """Where Newton's method for rebalance_factor starts: a point at or above the root, close to it.

    |w_i mu - d_i| >= |w_i - d_i| - |w_i| (1 - mu), so f(mu) >= mu - 1 + c (T - G (1 - mu)) with
    T = sum |w_i - d_i| and G = sum |w_i|; that bound is 0 at (1 - c T + c G) / (1 + c G), where f is
    therefore >= 0. Only kinks within O(c^2) of the root lie between, so most rows need one step.
    """
    return min(1.0, (1.0 - cost_rate * turnover + cost_rate * gross) / (1.0 + cost_rate * gross))


def weight_clip(long_only: bool) -> tuple[float, float]:
    """Bounds of the drifted weights in the observation. A long-only book stays in the simplex, so
    [0, 1] only removes float rounding. A long-short book can drift to any exposure; beyond 10x the
    exact figure tells a policy nothing more (info and the account keep the true weights)."""
    return (0.0, 1.0) if long_only else (-OBS_CLIP, OBS_CLIP)


def portfolio_spaces(layout: ObsLayout, params: PortfolioParams) -> tuple[gym.spaces.Box, gym.spaces.Box]:
    """(action_space, observation_space) of one env copy.

    The weights part is bounded by `weight_clip`.
    """
    n = layout.n_assets
    bound = np.float32(params.logit_bound)
    action_space = gym.spaces.Box(-bound, bound, shape=(n + 1,), dtype=np.float32)
    w_lo, w_hi = weight_clip(params.long_only)
    m = layout.market_size
    low = np.concatenate((np.full(m, -OBS_CLIP), np.full(n + 1, w_lo))).astype(np.float32)
    high = np.concatenate((np.full(m, OBS_CLIP), np.full(n + 1, w_hi))).astype(np.float32)
    return action_space, gym.spaces.Box(low, high, dtype=np.float32)


class PortfolioManagementEnv(gym.Env):
    """Allocate an account over N assets and cash, rebalancing at every bar's close.

    ## Timing (the no-look-ahead contract)
    The observation at decision bar t holds the features of bars t-W+1..t and the weights after bar
    t's close. The action chosen on it is filled at close[t] (market-on-close, costs charged then);
    its reward is realised at close[t+1]. Nothing observed at bar t depends on a bar > t. The first
    decision bar is t0 = max(start, W-1) (history before `start` fills the window when it exists).

    ## Action Space
    `Box(-logit_bound, logit_bound, (N+1,), float32)`, index 0 = cash. Actions outside the box are
    clipped to it.
    - long_only=True: target weights w = softmax(action), except that a logit at or below
      -logit_bound pins its weight to exactly 0 (so a policy can hold exactly no cash, or exactly
      none of an asset); if every logit is pinned, w is equal weights over all N+1.
    - long_only=False: risky weights w_i = (a_i / b) / max(1, sum_j |a_j / b|) for i >= 1 (b =
      logit_bound, j over the risky assets), cash w_0 = 1 - sum_i w_i; the cash logit is unused.
      Gross exposure is at most 1; a negative w_i is a short, a cash weight above 1 holds the
      short-sale proceeds.

    ## Observation Space
    float32 Box of W*N*F + N+1 values: the window of all market features (bars t-W+1..t, all
    assets, all features) in (W, N, F) C order, clipped to [-10, 10], followed by the current
    drifted weights d (N+1, cash first; clipped to [0, 1] long-only, which only removes rounding,
    and to [-10, 10] long-short). `obs_layout` describes it.

    ## Reward
    With value V and drifted weights d at bar t (an episode starts all cash: d = [1, 0..0],
    V = initial_cash), and target weights w:
        mu solves mu = 1 - c * sum_{i>=1} |w_i mu - d_i|  (c = transaction_cost; rebalance_factor)
        V_after = V * mu;  turnover = sum_{i>=1} |w_i - d_i / mu|  (traded value / V_after)
        y = [1, close[t+1] / close[t]];      growth = w . y;  V' = V_after * growth
        d' = w * y / growth;                 reward = log(V' / V)
    i.e. the log growth of the account net of costs, with V'/V floored at 1e-9 inside the log. The
    rebalance is what a broker does: asset i is bought or sold until it is w_i of the value left
    after the fees, fees paid from cash, so a paper account trading the same targets at the same
    closes ends with the same value.

    ## Episode End
    truncated=True on the step that reaches bar end-1, or after `episode_length` steps when set
    (reset then draws the start bar uniformly from the bars that leave room for a whole episode;
    an episode_length longer than the range runs from t0 to the end).
    terminated=True on ruin: V' <= 0 or costs eating the whole value (possible only long-short).

    ## Info
    portfolio_value (V'), weights (w, after the rebalance), turnover (the traded value as a fraction
    of the rebalanced book: 1 for all cash into assets), cost (currency, V - V_after =
    V_after * transaction_cost * turnover), return (V'/V - 1), price_relatives (y), date (ISO string of bar
    t+1), bar (t+1). reset's info has portfolio_value, weights (d), date and bar of t0.
    """

    metadata = {"render_modes": []}

    def __init__(self, market: MarketData | None = None, *, start: int | None = None, end: int | None = None,
                 params: PortfolioParams | None = None, **kwargs):
        self.params = resolve_params(PortfolioParams, params, kwargs)
        self.market = default_market() if market is None else market
        p = self.params
        self.bars = episode_bars(len(self.market), start, end, p.window, p.episode_length)
        n, f = self.market.n_assets, self.market.n_features
        self.obs_layout = ObsLayout(window=p.window, n_assets=n, n_features=f, n_extra=n + 1)
        # Rows [lo, end) are the only market rows an episode can look at.
        self._lo = self.bars.first - p.window + 1
        check_close(self.market, self._lo, self.bars.end)
        self._features = np.clip(self.market.features[self._lo:self.bars.end], -OBS_CLIP, OBS_CLIP).astype(np.float32)
        self._close = np.asarray(self.market.close, dtype=np.float64)

        self.action_space, self.observation_space = portfolio_spaces(self.obs_layout, p)

        self._t = self.bars.first
        self._steps = 0
        self._value = float(p.initial_cash)
        self._weights = self._cash_only()

    def _cash_only(self) -> np.ndarray:
        d = np.zeros(self.market.n_assets + 1)
        d[0] = 1.0
        return d

    def _obs(self) -> np.ndarray:
        k = self._t - self._lo
        window = self._features[k - self.params.window + 1:k + 1].reshape(-1)
        weights = np.clip(self._weights, *weight_clip(self.params.long_only)).astype(np.float32)
        return np.concatenate((window, weights))

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        b = self.bars
        if self.params.episode_length is not None and b.last_start > b.first:
            self._t = int(self.np_random.integers(b.first, b.last_start + 1))
        else:
            self._t = b.first
        self._steps = 0
        self._value = float(self.params.initial_cash)
        self._weights = self._cash_only()
        info = {"portfolio_value": self._value, "weights": self._weights.copy(),
                "date": iso_date(self.market, self._t), "bar": self._t}
        return self._obs(), info

    def step(self, action):
        a = np.asarray(action, dtype=np.float64)
        if a.shape != self.action_space.shape or not np.isfinite(a).all():
            raise ValueError(BAD_ACTION.format(shape=self.action_space.shape, got=action))
        p, t = self.params, self._t
        d, value = self._weights, self._value
        w = target_weights(a, p)
        if np.abs(w - d).max() <= p.no_trade_band:
            w = d.copy()
        mu = rebalance_factor(w, d, p.transaction_cost)
        turnover = float(np.abs(w[1:] - d[1:] / mu).sum())
        after = value * mu
        cost = value - after
        y = np.concatenate(([1.0], self._close[t + 1] / self._close[t]))
        growth = float(w @ y)
        new_value = after * growth
        ruined = after <= 0.0 or new_value <= 0.0
        # On ruin the weights are meaningless (growth may be 0); keep the target instead of dividing.
        self._weights = w * y / growth if not ruined else w.copy()
        ratio = new_value / value
        reward = float(np.log(max(ratio, MIN_GROWTH)))
        self._value = new_value
        self._t = t + 1
        self._steps += 1
        at_end = self._t == self.bars.end - 1 or self._steps == p.episode_length
        info = {
            "portfolio_value": new_value,
            "weights": w,
            "turnover": turnover,
            "cost": cost,
            "return": ratio - 1.0,
            "price_relatives": y,
            "date": iso_date(self.market, self._t),
            "bar": self._t,
        }
        return self._obs(), reward, bool(ruined), bool(at_end and not ruined), info
