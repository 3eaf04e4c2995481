"""The on-policy machinery PPO and A2C share: the actor-critic, the rollout on the batched env into
the buffer (which computes GAE), `act`, the epoch loop and the state. An algorithm adds its optimizer
and its update (engine/agents/ppo.py, engine/agents/a2c.py).

Speed: the rollout steps all B envs of the batched env at once on torch tensors; the loop body is a
fixed handful of tensor ops per step, whatever B, with no per-env Python work and no host
synchronisation on accelerators (see `_any_truncated`).
"""
from __future__ import annotations

import math
from typing import ClassVar

import torch

from engine.agents.base import ALL_TASKS, Agent, Progress, no_progress
from engine.agents.buffers import Minibatch, RolloutBuffer
from engine.agents.episodes import EpisodeStats
from engine.agents.policies import ActorCritic, check_spaces
from engine.envs.base import BatchedEnv


class OnPolicyAgent(Agent):
    """What PPO and A2C share: the actor-critic, the rollout, `act` and the state.

    Subclasses set `name`, `Params`, and implement `_make_optimizer` and `_update(buffer, generator)`.
    """

    tasks: ClassVar[frozenset[str]] = ALL_TASKS

    def __init__(self, env: BatchedEnv, params=None, *, device: str | torch.device = "auto", seed: int = 0):
        super().__init__(env, params, device=device, seed=seed)
        check_spaces(self.name, self.single_observation_space, self.single_action_space)
        p = self.params
        obs_dim = int(self.single_observation_space.shape[0])
        # Weights depend on the agent's seed only, not on whatever drew from the global RNG before.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.policy = ActorCritic(obs_dim, self.single_action_space, hidden=tuple(p.hidden),
                                      activation=p.activation, shared=p.shared_network,
                                      log_std_init=p.log_std_init)
        self.policy.to(self.device)
        self.optimizer = self._make_optimizer()
        self.discrete = self.policy.discrete
        if not self.discrete:
            space = self.single_action_space
            self._low = torch.as_tensor(space.low, dtype=torch.float32, device=self.device)
            self._high = torch.as_tensor(space.high, dtype=torch.float32, device=self.device)
        self._act_generator = torch.Generator(device=self.device)
        self._act_generator.manual_seed(seed)
        self._buffer: RolloutBuffer | None = None

    def _make_optimizer(self) -> torch.optim.Optimizer:
        raise NotImplementedError

    def _update(self, buffer: RolloutBuffer, generator: torch.Generator) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    # -- acting -------------------------------------------------------------------------------------

    def _to_env(self, action: torch.Tensor) -> torch.Tensor:
        """A policy action as the env takes it: Box actions clipped to the bounds."""
        if self.discrete:
            return action
        return torch.maximum(torch.minimum(action, self._high), self._low)

    @torch.no_grad()
    def act(self, obs: torch.Tensor, deterministic: bool = True) -> torch.Tensor:
        obs = torch.as_tensor(obs, dtype=torch.float32, device=self.device)
        if deterministic:
            action = self.policy.mode(obs)
        else:
            action, _, _ = self.policy.sample(obs, self._act_generator)
        return self._to_env(action)

    # -- rollout ------------------------------------------------------------------------------------

    def _rollout_buffer(self, n_steps: int, num_envs: int) -> RolloutBuffer:
        """The preallocated buffer, rebuilt only when the rollout shape changes."""
        b = self._buffer
        if b is None or (b.n_steps, b.num_envs) != (n_steps, num_envs):
            space = self.single_action_space
            self._buffer = RolloutBuffer(
                n_steps, num_envs, int(self.single_observation_space.shape[0]),
                action_shape=() if self.discrete else tuple(space.shape),
                action_dtype=torch.int64 if self.discrete else torch.float32,
                gamma=self.params.gamma, gae_lambda=self.params.gae_lambda, device=self.device,
            )
        return self._buffer

    def _any_truncated(self, truncated: torch.Tensor) -> bool:
        # Asking "any?" is free on the CPU and saves a critic pass on most steps; on an accelerator it
        # would stall the pipeline every step, so there V(final_obs) is always computed instead.
        return bool(truncated.any()) if self.device.type == "cpu" else True

    @torch.no_grad()
    def collect_rollout(self, env: BatchedEnv, obs: torch.Tensor, buffer: RolloutBuffer,
                        generator: torch.Generator, stats: EpisodeStats) -> torch.Tensor:
        """Fill `buffer` with its n_steps steps of every env, starting at `obs`; compute GAE.
        Returns the observation to continue from."""
        buffer.reset()
        for _ in range(buffer.n_steps):
            action, log_prob, value = self.policy.sample(obs, generator)
            next_obs, reward, terminated, truncated, info = env.step(self._to_env(action).to(env.device))
            reward, terminated, truncated = (x.to(self.device) for x in (reward, terminated, truncated))
            final_value = None
            if self._any_truncated(truncated):
                final_value = self.policy.value(info["final_obs"].to(self.device))
            buffer.add(obs, action, log_prob, value, reward, terminated, truncated, final_value)
            stats.update(reward, terminated | truncated)
            obs = next_obs.to(self.device)
        buffer.compute_returns_and_advantages(self.policy.value(obs))
        return obs

    def learn_epoch(self, env: BatchedEnv, n_steps: int, *, seed: int,
                    progress: Progress = no_progress) -> dict[str, float]:
        """About `n_steps` env-steps in rollouts of `params.n_steps` steps per env, one update after
        each. When n_steps < num_envs * params.n_steps the rollout is shortened to
        ceil(n_steps / num_envs) steps, so that a wide batch does not overshoot the epoch."""
        generator, obs = self._begin_epoch(env, n_steps, seed)
        num_envs = obs.shape[0]
        rollout_len = min(self.params.n_steps, math.ceil(n_steps / num_envs))
        n_rollouts = math.ceil(n_steps / (num_envs * rollout_len))
        buffer = self._rollout_buffer(rollout_len, num_envs)
        stats = EpisodeStats(num_envs, self.device)
        totals: dict[str, torch.Tensor] = {}
        for rollout in range(1, n_rollouts + 1):
            obs = self.collect_rollout(env, obs, buffer, generator, stats)
            for key, value in self._update(buffer, generator).items():
                totals[key] = totals.get(key, 0.0) + value
            progress(rollout * num_envs * rollout_len)
        metrics = {key: float(value) / n_rollouts for key, value in totals.items()}
        metrics.update(stats.metrics())
        return metrics

    # -- update helpers -----------------------------------------------------------------------------

    def _step(self, loss: torch.Tensor) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.policy.parameters(), self.params.max_grad_norm)
        self.optimizer.step()

    @staticmethod
    def _advantages(mb: Minibatch, normalize: bool) -> torch.Tensor:
        adv = mb.advantages
        if normalize and adv.numel() > 1:
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        return adv

    @staticmethod
    def explained_variance(buffer: RolloutBuffer) -> torch.Tensor:
        """1 - Var(returns - values) / Var(returns): 1 = the critic predicts the returns, <= 0 = no better
        than a constant. NaN when the returns are constant."""
        returns, values = buffer.returns[: buffer.pos], buffer.values[: buffer.pos]
        var = returns.var()
        return 1.0 - (returns - values).var() / var if var > 0 else torch.tensor(math.nan)

    # -- state --------------------------------------------------------------------------------------

    def state_dict(self) -> dict:
        return {
            "policy": self.policy.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "act_generator": self._act_generator.get_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.policy.load_state_dict(state["policy"])
        self.optimizer.load_state_dict(state["optimizer"])
        self._act_generator.set_state(state["act_generator"])
