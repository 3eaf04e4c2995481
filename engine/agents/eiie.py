"""EIIE: the Ensemble of Identical Independent Evaluators (Jiang, Xu & Liang 2017, "A Deep
Reinforcement Learning Framework for the Financial Portfolio Management Problem"), the portfolio
agent TradeMaster ships.

The network scores every asset with the same small conv net applied to that asset's own
(window x features) history and its current weight, so the weights are shared across assets and
the net does not care how many there are or in which order:

    features (B, F, N, W) -> Conv(1 x k) -> ReLU -> Conv(1 x (W-k+1)) -> ReLU   (B, C, N, 1)
    ++ current asset weights (B, 1, N, 1) -> Conv(1 x 1) -> scores (B, N)
    weights = softmax([cash_bias, scores])   (cash first, as the env expects)

Training is Jiang's deterministic policy gradient: the portfolio env's reward is a differentiable
function of the weights, so the policy climbs it directly,

    J = mean over stored steps of  log(w . y) + log(mu(w, d)),  mu = 1 - c * sum_{i>=1} |w_i mu - d_i|

with y the step's price relatives (cash 1), d the drifted weights the decision was taken from
(observed) and c the env's transaction cost. The rollout that collects (observation, y) pairs runs
the policy itself, its logits perturbed by Gaussian noise of std `exploration_noise` so the stored
drifted weights d cover more than the policy's own path (the analogue of Jiang's portfolio-vector
memory with random mini-batches).
"""
from __future__ import annotations

import math
from typing import ClassVar

import gymnasium as gym
import torch
from pydantic import Field
from pydantic.dataclasses import dataclass
from torch import nn

from engine.agents.base import Agent, Progress, no_progress
from engine.agents.baselines import portfolio_actions
from engine.agents.episodes import EpisodeStats
from engine.envs.base import BatchedEnv, ObsLayout
from engine.envs.portfolio_batched import rebalance_factors

UNSUPPORTED_SPACE = ("{agent} is a portfolio-management agent: it needs a Box action space of N+1 logits "
                     "(cash first) and observations ending in the N+1 current weights, not {space}")
NO_PRICE_RELATIVES = "{agent} trains on info['price_relatives'] of the portfolio env, which this env does not give"


@dataclass
class EIIEParams:
    learning_rate: float = Field(1e-3, gt=0, le=1, description="Adam step size")
    weight_decay: float = Field(1e-8, ge=0, description="L2 penalty on the weights (Jiang et al. use 1e-8)")
    n_steps: int = Field(64, gt=0, description="Steps collected per env between two updates (shortened when "
                         "an epoch asks for fewer steps)")
    update_epochs: int = Field(4, gt=0, description="Passes over each rollout in the update")
    minibatch_size: int = Field(256, gt=0, description="Stored steps per gradient step (capped by the rollout "
                                "size)")
    kernel_size: int = Field(3, gt=0, description="Bars covered by the first convolution (capped by the "
                             "window)")
    conv_channels: int = Field(2, gt=0, description="Feature maps of the first convolution (Jiang et al.: 2)")
    hidden_channels: int = Field(20, gt=0, description="Feature maps of the convolution over the rest of the "
                                 "window (Jiang et al.: 20)")
    exploration_noise: float = Field(0.1, ge=0, description="Std of the Gaussian noise added to the logits "
                                     "log(w) while collecting; 0 = collect with the policy itself")
    max_grad_norm: float = Field(1.0, gt=0, description="Gradients are rescaled to at most this global L2 norm")


def check_spaces(agent: str, observation_space: gym.Space, action_space: gym.Space, layout: ObsLayout) -> None:
    n = layout.n_assets
    ok = (isinstance(action_space, gym.spaces.Box) and action_space.shape == (n + 1,)
          and isinstance(observation_space, gym.spaces.Box) and len(observation_space.shape) == 1
          and layout.n_extra >= n + 1 and observation_space.shape[0] == layout.size)
    if not ok:
        raise ValueError(UNSUPPORTED_SPACE.format(agent=agent, space=action_space))


class EIIENet(nn.Module):
    """Portfolio weights (B, N+1), cash first, of flat portfolio observations (B, obs_dim)."""

    def __init__(self, layout: ObsLayout, *, kernel_size: int = 3, conv_channels: int = 2,
                 hidden_channels: int = 20):
        super().__init__()
        self.layout = layout
        w, f = layout.window, layout.n_features
        k = min(kernel_size, w)
        # Kernels of height 1: each asset is evaluated on its own history, with the same weights.
        self.time_conv = nn.Conv2d(f, conv_channels, kernel_size=(1, k))
        self.window_conv = nn.Conv2d(conv_channels, hidden_channels, kernel_size=(1, w - k + 1))
        self.score = nn.Conv2d(hidden_channels + 1, 1, kernel_size=(1, 1))
        self.cash_bias = nn.Parameter(torch.zeros(1))

    def current_weights(self, obs: torch.Tensor) -> torch.Tensor:
        """The drifted weights d (B, N+1), cash first: the last N+1 observation values."""
        return obs[:, obs.shape[1] - (self.layout.n_assets + 1):]

    def logits(self, obs: torch.Tensor) -> torch.Tensor:
        """[cash_bias, asset scores] (B, N+1): the softmax of these are the weights."""
        lay = self.layout
        b = obs.shape[0]
        market = obs[:, :lay.market_size].reshape(b, lay.window, lay.n_assets, lay.n_features)
        x = market.permute(0, 3, 2, 1)  # (B, F, N, W): channels = features, height = assets, width = time
        x = torch.relu(self.time_conv(x))
        x = torch.relu(self.window_conv(x))  # (B, C, N, 1)
        d = self.current_weights(obs)[:, 1:].reshape(b, 1, lay.n_assets, 1)
        scores = self.score(torch.cat((x, d), dim=1)).reshape(b, lay.n_assets)
        return torch.cat((self.cash_bias.expand(b, 1), scores), dim=1)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.logits(obs), dim=1)


def log_growth(weights: torch.Tensor, price_relatives: torch.Tensor, current: torch.Tensor,
               transaction_cost: float) -> torch.Tensor:
    """Per-row log growth of the account net of costs (B,): log(w . y) + log(mu), mu the
    self-financing rebalance factor (rebalance_factors); the portfolio env's reward as a function of w."""
    mu = rebalance_factors(weights, current, transaction_cost)
    gross = (weights * price_relatives).sum(dim=1)
    # Floors keep the log finite on a (theoretically impossible for c < 1) full loss.
    return gross.clamp_min(1e-12).log() + mu.clamp_min(1e-12).log()


class EIIE(Agent):
    name: ClassVar[str] = "eiie"
    Params: ClassVar[type] = EIIEParams
    tasks: ClassVar[frozenset[str]] = frozenset({"portfolio_management"})

    def __init__(self, env: BatchedEnv, params=None, *, device: str | torch.device = "auto", seed: int = 0):
        super().__init__(env, params, device=device, seed=seed)
        check_spaces(self.name, self.single_observation_space, self.single_action_space, self.obs_layout)
        p = self.params
        self.env_params = env.params
        self.transaction_cost = float(env.params.transaction_cost)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.net = EIIENet(self.obs_layout, kernel_size=p.kernel_size, conv_channels=p.conv_channels,
                               hidden_channels=p.hidden_channels)
        self.net.to(self.device)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=p.learning_rate, weight_decay=p.weight_decay)
        self._act_generator = torch.Generator(device=self.device)
        self._act_generator.manual_seed(seed)

    # -- acting -------------------------------------------------------------------------------------

    def _noisy_actions(self, obs: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        weights = self.net(obs)
        noise = torch.randn(weights.shape, generator=generator, device=generator.device).to(self.device)
        noisy = torch.softmax(weights.clamp_min(1e-30).log() + self.params.exploration_noise * noise, dim=1)
        return portfolio_actions(noisy, self.env_params)

    @torch.no_grad()
    def act(self, obs: torch.Tensor, deterministic: bool = True) -> torch.Tensor:
        """The env action of the net's weights (logits log(w) - max log(w), clipped to the bounds);
        with deterministic=False the logits carry the exploration noise."""
        obs = torch.as_tensor(obs, dtype=torch.float32, device=self.device)
        if deterministic:
            return portfolio_actions(self.net(obs), self.env_params)
        return self._noisy_actions(obs, self._act_generator)

    # -- training -----------------------------------------------------------------------------------

    def learn_epoch(self, env: BatchedEnv, n_steps: int, *, seed: int,
                    progress: Progress = no_progress) -> dict[str, float]:
        """Rollouts of `n_steps` per env (shortened to ceil(n_steps / num_envs) when the epoch is
        smaller), each followed by `update_epochs` passes of minibatch gradient ascent on J."""
        generator, obs = self._begin_epoch(env, n_steps, seed)
        p = self.params
        num_envs = obs.shape[0]
        rollout_len = min(p.n_steps, math.ceil(n_steps / num_envs))
        n_rollouts = math.ceil(n_steps / (num_envs * rollout_len))
        stats = EpisodeStats(num_envs, self.device)
        obs_buf = torch.zeros((rollout_len, num_envs, obs.shape[1]), device=self.device)
        rel_buf = torch.zeros((rollout_len, num_envs, self.obs_layout.n_assets + 1), device=self.device)
        sums = torch.zeros(3, dtype=torch.float64, device=self.device)
        n_updates = 0
        for rollout in range(1, n_rollouts + 1):
            for t in range(rollout_len):
                with torch.no_grad():
                    action = self._noisy_actions(obs, generator)
                next_obs, reward, terminated, truncated, info = env.step(action.to(env.device))
                if "price_relatives" not in info:
                    raise ValueError(NO_PRICE_RELATIVES.format(agent=self.name))
                obs_buf[t] = obs
                rel_buf[t] = info["price_relatives"].to(self.device, torch.float32)
                stats.update(reward.to(self.device, torch.float64), (terminated | truncated).to(self.device))
                obs = next_obs.to(self.device)
            for loss, growth, turnover in self._update(obs_buf.flatten(0, 1), rel_buf.flatten(0, 1), generator):
                sums += torch.stack((loss, growth, turnover)).double()
                n_updates += 1
            progress(rollout * num_envs * rollout_len)
        means = (sums / n_updates).tolist()
        metrics = {"train/loss": means[0], "train/policy_loss": means[0], "train/log_growth": means[1],
                   "train/turnover": means[2], "train/update_steps": float(n_updates)}
        metrics.update(stats.metrics())
        return metrics

    def _update(self, obs: torch.Tensor, rel: torch.Tensor, generator: torch.Generator):
        """Minibatch gradient ascent on J over one rollout; yields (loss, log growth, turnover) of
        each step, detached."""
        p = self.params
        n = obs.shape[0]
        batch_size = min(p.minibatch_size, n)
        for _ in range(p.update_epochs):
            order = torch.randperm(n, generator=generator, device=generator.device).to(self.device)
            for start in range(0, n, batch_size):
                idx = order[start:start + batch_size]
                o, y = obs[idx], rel[idx]
                d = self.net.current_weights(o)
                w = self.net(o)
                growth = log_growth(w, y, d, self.transaction_cost).mean()
                loss = -growth
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.net.parameters(), p.max_grad_norm)
                self.optimizer.step()
                turnover = (w[:, 1:] - d[:, 1:]).abs().sum(dim=1).mean()
                yield loss.detach(), growth.detach(), turnover.detach()

    # -- state --------------------------------------------------------------------------------------

    def state_dict(self) -> dict:
        return {
            "net": self.net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "act_generator": self._act_generator.get_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.net.load_state_dict(state["net"])
        self.optimizer.load_state_dict(state["optimizer"])
        self._act_generator.set_state(state["act_generator"])
