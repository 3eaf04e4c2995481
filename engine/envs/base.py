"""What every batched environment offers the agents and the trainer.

The single envs are plain `gymnasium.Env`s. Each has a batched twin that steps B copies at once on
torch tensors (on the env's device) with the same semantics, so that training is not bound by Python
per-step overhead. The twin follows the vector-env conventions of gymnasium/SB3 with auto-reset:

    obs = env.reset(seed=0)                       # (B, obs_dim) float32
    obs, reward, terminated, truncated, info = env.step(actions)
        # reward (B,) float32; terminated/truncated (B,) bool
        # where an episode ended, obs is already the first observation of the next episode and
        # info["final_obs"] (B, obs_dim) holds the last observation of the ended one (rows of
        # envs that did not end are undefined), so value bootstrapping on truncation stays right.

`single_observation_space` and `single_action_space` are the gymnasium spaces of one copy, identical
to the single env's. `obs_layout` says how the flat observation is laid out, for agents (EIIE) that
need the (window, assets, features) structure back.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import gymnasium as gym
import torch


@dataclass(frozen=True)
class ObsLayout:
    """The flat observation is `window * n_assets * n_features` market values in (W, N, F) C-order,
    followed by `n_extra` account values (current weights, position, remaining quantity...)."""

    window: int
    n_assets: int
    n_features: int
    n_extra: int

    @property
    def market_size(self) -> int:
        return self.window * self.n_assets * self.n_features

    @property
    def size(self) -> int:
        return self.market_size + self.n_extra


class BatchedEnv(Protocol):
    num_envs: int
    device: torch.device
    single_observation_space: gym.spaces.Space
    single_action_space: gym.spaces.Space
    obs_layout: ObsLayout

    def reset(self, *, seed: int | None = None) -> torch.Tensor: ...

    def step(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, dict]: ...
