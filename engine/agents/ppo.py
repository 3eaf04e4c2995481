"""Proximal Policy Optimization (Schulman et al. 2017), read like CleanRL's ppo_continuous_action.py.

Top to bottom: the hyperparameters (PPOParams), the on-policy machinery PPO shares with A2C
(OnPolicyAgent: networks, rollout on the batched env, act, state), then PPO's clipped update.
The networks live in engine/agents/policies.py and GAE in engine/agents/buffers.py.

Speed: the rollout steps all B envs of the batched env at once on torch tensors; the loop body is a
fixed handful of tensor ops per step, whatever B, with no per-env Python work and no host
synchronisation on accelerators (see `_any_truncated`).
"""
from __future__ import annotations

import math
from typing import ClassVar, Literal

import torch
from pydantic import Field, PositiveInt
from pydantic.dataclasses import dataclass

from engine.agents.base import Agent
from engine.agents.buffers import Minibatch, RolloutBuffer
from engine.agents.policies import ActorCritic, check_spaces
from engine.envs.base import BatchedEnv

ALL_TASKS = frozenset({"portfolio_management", "algorithmic_trading", "order_execution"})


@dataclass
class PPOParams:
    n_steps: int = Field(64, gt=0, description="Steps collected per env between two updates; the rollout is "
                         "n_steps x num_envs samples (shortened when an epoch asks for fewer steps)")
    learning_rate: float = Field(3e-4, gt=0, le=1, description="Adam step size")
    gamma: float = Field(0.99, ge=0, le=1, description="Discount factor per step: how much a reward one bar "
                         "later is worth now")
    gae_lambda: float = Field(0.95, ge=0, le=1, description="GAE lambda: 1 = Monte-Carlo advantages (unbiased, "
                              "noisy), 0 = one-step TD (biased, smooth)")
    update_epochs: int = Field(4, gt=0, description="Passes over each rollout in the update")
    minibatch_size: int = Field(1024, gt=0, description="Samples per gradient step (capped by the rollout size)")
    clip_coef: float = Field(0.2, gt=0, description="PPO clip range: how far the probability ratio of an action "
                             "may move from 1 in one update")
    ent_coef: float = Field(0.0, ge=0, description="Weight of the entropy bonus (more = more exploration)")
    vf_coef: float = Field(0.5, ge=0, description="Weight of the value-function loss")
    max_grad_norm: float = Field(0.5, gt=0, description="Gradients are rescaled to at most this global L2 norm")
    hidden: tuple[PositiveInt, ...] = Field((64, 64), min_length=1, description="Hidden layer widths of the "
                                            "actor and of the critic")
    activation: Literal["tanh", "relu", "elu"] = Field("tanh", description="Activation between hidden layers")
    shared_network: bool = Field(False, description="Actor and critic share their hidden layers")
    log_std_init: float = Field(0.0, ge=-20, le=5, description="Initial log standard deviation of the "
                                "Gaussian policy (continuous actions only); 0 = std 1")
    normalize_advantage: bool = Field(True, description="Standardise advantages within each minibatch")
    target_kl: float | None = Field(None, gt=0, description="Stop the update's passes early once the "
                                    "approximate KL divergence from the rollout policy exceeds this (none = never)")


class EpisodeStats:
    """Per-env running returns and the totals an epoch reports, as tensors (no host sync per step)."""

    def __init__(self, num_envs: int, device: torch.device):
        self.running = torch.zeros(num_envs, dtype=torch.float64, device=device)
        self.finished_return = torch.zeros((), dtype=torch.float64, device=device)
        self.finished_count = torch.zeros((), dtype=torch.float64, device=device)
        self.reward_sum = torch.zeros((), dtype=torch.float64, device=device)
        self.steps = 0

    def update(self, reward: torch.Tensor, done: torch.Tensor) -> None:
        self.running += reward
        self.reward_sum += reward.sum()
        self.finished_return += torch.where(done, self.running, 0.0).sum()
        self.finished_count += done.sum()
        self.running.masked_fill_(done, 0.0)
        self.steps += reward.shape[0]

    def metrics(self) -> dict[str, float]:
        count = float(self.finished_count)
        return {
            "train/reward": float(self.reward_sum) / max(self.steps, 1),
            "train/episode_return": float(self.finished_return) / count if count else math.nan,
            "train/episodes": count,
            "time/env_steps": float(self.steps),
        }


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

    def learn_epoch(self, env: BatchedEnv, n_steps: int, *, seed: int) -> dict[str, float]:
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
        for _ in range(n_rollouts):
            obs = self.collect_rollout(env, obs, buffer, generator, stats)
            for key, value in self._update(buffer, generator).items():
                totals[key] = totals.get(key, 0.0) + value
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


class PPO(OnPolicyAgent):
    """PPO with the clipped surrogate objective, GAE and a state-independent Gaussian (Box) or a
    categorical (Discrete) policy; Adam (eps 1e-5, as CleanRL and SB3)."""

    name: ClassVar[str] = "ppo"
    Params: ClassVar[type] = PPOParams

    def _make_optimizer(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.policy.parameters(), lr=self.params.learning_rate, eps=1e-5)

    def _update(self, buffer: RolloutBuffer, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """`update_epochs` passes of minibatch gradient steps on the clipped objective

        L = -E[min(r A, clip(r, 1-eps, 1+eps) A)] - ent_coef * H + vf_coef * E[(V - R)^2],
        r = pi(a|s) / pi_old(a|s). With target_kl set, the passes stop after the first one whose last
        minibatch's approximate KL exceeds it (CleanRL's rule)."""
        p = self.params
        batch_size = min(p.minibatch_size, buffer.pos * buffer.num_envs)
        sums = torch.zeros(6, device=self.device)
        n = 0
        for _ in range(p.update_epochs):
            for mb in buffer.minibatches(batch_size, generator):
                log_prob, entropy, value = self.policy.evaluate(mb.obs, mb.actions)
                log_ratio = log_prob - mb.log_probs
                ratio = log_ratio.exp()
                adv = self._advantages(mb, p.normalize_advantage)
                policy_loss = torch.max(-adv * ratio, -adv * ratio.clamp(1 - p.clip_coef, 1 + p.clip_coef)).mean()
                value_loss = (value - mb.returns).square().mean()
                entropy = entropy.mean()
                loss = policy_loss - p.ent_coef * entropy + p.vf_coef * value_loss
                self._step(loss)
                with torch.no_grad():
                    # Schulman's low-variance estimator of KL(old || new), as CleanRL logs it.
                    approx_kl = ((ratio - 1) - log_ratio).mean()
                    clip_fraction = ((ratio - 1).abs() > p.clip_coef).float().mean()
                    sums += torch.stack([loss, policy_loss, value_loss, entropy, approx_kl, clip_fraction]).detach()
                n += 1
            if p.target_kl is not None and float(approx_kl) > p.target_kl:
                break
        means = sums / n
        keys = ("loss", "policy_loss", "value_loss", "entropy", "approx_kl", "clip_fraction")
        out = {f"train/{k}": means[i] for i, k in enumerate(keys)}
        out["train/explained_variance"] = self.explained_variance(buffer)
        out["train/update_steps"] = torch.tensor(float(n))
        return out
