"""Experience replay and the off-policy loop that double DQN and SAC share.

The replay buffer lives for one epoch: `learn_epoch` starts it empty and fills it from the epoch's
own rollout. That keeps an epoch a pure function of (weights, optimizer state, seed), as the Agent
contract asks, without writing a buffer of up to a million observations into every checkpoint; the
price is that each epoch spends its first `learning_starts` env-steps collecting before it updates.

Episode ends (Pardo et al. 2018, "Time Limits in Reinforcement Learning"; what SB3 does):
- terminated (ruin, order filled): the value after it is 0, the target does not bootstrap.
- truncated (out of data, episode_length reached): the episode was cut, not ended; the transition
  is stored with the final observation of the cut episode (info["final_obs"]) as its next
  observation and the target bootstraps from it.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch

from engine.agents.base import Agent, Progress, no_progress
from engine.agents.episodes import EpisodeStats
from engine.envs.base import BatchedEnv


class Transitions(NamedTuple):
    """A sampled batch: obs, next_obs (n, obs_dim) float32; actions (n, *action_shape); rewards and
    terminated (n,) float32 (terminated is 1.0 where the episode truly ended)."""

    obs: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor
    next_obs: torch.Tensor
    terminated: torch.Tensor


class ReplayBuffer:
    """A ring buffer of `capacity` transitions as preallocated tensors on `device`; once full, the
    oldest transitions are overwritten first."""

    def __init__(self, capacity: int, obs_dim: int, *, action_shape: tuple[int, ...] = (),
                 action_dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu"):
        if capacity <= 0:
            raise ValueError(f"capacity must be positive, got {capacity}")
        self.capacity = capacity
        self.device = torch.device(device)
        self.obs = torch.zeros((capacity, obs_dim), dtype=torch.float32, device=self.device)
        self.next_obs = torch.zeros((capacity, obs_dim), dtype=torch.float32, device=self.device)
        self.actions = torch.zeros((capacity, *action_shape), dtype=action_dtype, device=self.device)
        self.rewards = torch.zeros(capacity, dtype=torch.float32, device=self.device)
        self.terminated = torch.zeros(capacity, dtype=torch.float32, device=self.device)
        self.pos = 0
        self.size = 0

    def add(self, obs: torch.Tensor, actions: torch.Tensor, rewards: torch.Tensor, next_obs: torch.Tensor,
            terminated: torch.Tensor) -> None:
        """Store a batch of B transitions (B <= capacity), one per env copy."""
        b = obs.shape[0]
        if b > self.capacity:
            raise ValueError(f"a batch of {b} transitions does not fit a buffer of capacity {self.capacity}")
        idx = (torch.arange(b, device=self.device) + self.pos) % self.capacity
        self.obs[idx] = obs.to(self.device, torch.float32)
        self.next_obs[idx] = next_obs.to(self.device, torch.float32)
        self.actions[idx] = actions.to(self.device, self.actions.dtype)
        self.rewards[idx] = rewards.to(self.device, torch.float32)
        self.terminated[idx] = terminated.to(self.device, torch.float32)
        self.pos = (self.pos + b) % self.capacity
        self.size = min(self.size + b, self.capacity)

    def sample(self, batch_size: int, generator: torch.Generator) -> Transitions:
        """`batch_size` stored transitions drawn uniformly with replacement from `generator`."""
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        idx = torch.randint(self.size, (batch_size,), generator=generator, device=generator.device).to(self.device)
        return Transitions(self.obs[idx], self.actions[idx], self.rewards[idx], self.next_obs[idx],
                           self.terminated[idx])


class OffPolicyAgent(Agent):
    """What double DQN and SAC share: the epoch of collect-store-sample-update.

    Subclasses set `name`, `Params` (with buffer_size, learning_starts, batch_size, train_frequency
    and gradient_steps), `_action_shape`/`_action_dtype` (of the actions stored in the buffer) and
    implement `_explore(obs, generator) -> (stored action, env action)` and
    `train_step(batch, generator)` (the epoch's generator, for any sampling it does) returning
    scalar tensors to average into the epoch's metrics. `env_steps` counts every env-step the agent
    has collected in its life (it drives DQN's epsilon schedule and is part of the state).
    """

    _action_shape: tuple[int, ...] = ()
    _action_dtype: torch.dtype = torch.float32

    def __init__(self, env: BatchedEnv, params=None, *, device: str | torch.device = "auto", seed: int = 0):
        super().__init__(env, params, device=device, seed=seed)
        self.env_steps = 0

    def _explore(self, obs: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def train_step(self, batch: Transitions, generator: torch.Generator) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def learn_epoch(self, env: BatchedEnv, n_steps: int, *, seed: int,
                    progress: Progress = no_progress) -> dict[str, float]:
        """ceil(n_steps / num_envs) steps of the batched env into a fresh replay buffer; after every
        `train_frequency` of them, once the epoch has collected `learning_starts` transitions,
        `gradient_steps` updates on minibatches of `batch_size` sampled from it."""
        generator, obs = self._begin_epoch(env, n_steps, seed)
        p = self.params
        num_envs = obs.shape[0]
        n_iters = math.ceil(n_steps / num_envs)
        # No larger than the epoch needs: the buffer does not outlive it.
        capacity = max(min(p.buffer_size, n_iters * num_envs), num_envs)
        buffer = ReplayBuffer(capacity, obs.shape[1], action_shape=self._action_shape,
                              action_dtype=self._action_dtype, device=self.device)
        stats = EpisodeStats(num_envs, self.device)
        sums: dict[str, torch.Tensor] = {}
        n_updates = 0
        for it in range(n_iters):
            obs = self.collect_step(env, obs, buffer, generator, stats)
            collected = (it + 1) * num_envs
            if collected >= p.learning_starts and (it + 1) % p.train_frequency == 0:
                for _ in range(p.gradient_steps):
                    for key, value in self.train_step(buffer.sample(p.batch_size, generator), generator).items():
                        sums[key] = sums.get(key, 0.0) + value.detach()
                    n_updates += 1
            progress(collected)
        metrics = {key: float(value) / n_updates for key, value in sums.items()} if n_updates else {}
        for key in self._loss_keys():
            metrics.setdefault(key, math.nan)
        metrics["train/update_steps"] = float(n_updates)
        metrics.update(stats.metrics())
        return metrics

    @torch.no_grad()
    def collect_step(self, env: BatchedEnv, obs: torch.Tensor, buffer: ReplayBuffer, generator: torch.Generator,
                     stats: EpisodeStats) -> torch.Tensor:
        """Step every env copy once from `obs` with exploration, store the B transitions in `buffer`
        and return the observation to continue from."""
        stored, action = self._explore(obs, generator)
        next_obs, reward, terminated, truncated, info = env.step(action.to(env.device))
        next_obs, reward, terminated, truncated = (x.to(self.device) for x in (next_obs, reward, terminated, truncated))
        done = terminated | truncated
        final_obs = info.get("final_obs")
        # Where an episode ended, next_obs already starts the next one; the transition's true next
        # observation is the ended episode's last (the target only uses it when truncated).
        real_next = next_obs if final_obs is None else torch.where(done[:, None], final_obs.to(self.device), next_obs)
        buffer.add(obs, stored, reward, real_next, terminated)
        stats.update(reward.to(torch.float64), done)
        self.env_steps += obs.shape[0]
        return next_obs

    def _loss_keys(self) -> tuple[str, ...]:
        """Metric keys an epoch reports (NaN when it made no update, e.g. n_steps < learning_starts)."""
        return ("train/loss",)
