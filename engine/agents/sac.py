"""Soft Actor-Critic (Haarnoja et al. 2018, with automatic entropy tuning), read like CleanRL's
sac_continuous_action.py, for the Box actions of portfolio management and order execution.

- Twin Q networks and the minimum of their Polyak-averaged targets fight overestimation (TD3's
  clipped double Q).
- The actor is a Gaussian squashed by tanh into [-1, 1] and rescaled to the action bounds:
  action = mid + half_range * tanh(u). For the portfolio env that is [-logit_bound, logit_bound],
  which covers every target allocation. Everything the critics and the entropy see is the squashed
  action in [-1, 1] (SB3's convention), so the entropy target -dim(A) means the same whatever the
  bounds are.
- alpha (the entropy weight) is learned so that the policy's entropy tracks the target.
Replay and the epoch loop are engine/agents/replay.py's.
"""
from __future__ import annotations

import copy
import math
from typing import ClassVar, Literal

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field, PositiveInt
from pydantic.dataclasses import dataclass
from torch import nn

from engine.agents.base import Progress, no_progress
from engine.agents.networks import mlp
from engine.agents.policies import ACTIVATIONS
from engine.agents.replay import OffPolicyAgent, Transitions
from engine.envs.base import BatchedEnv

UNSUPPORTED_SPACE = "{agent} needs a bounded 1-D Box action space (portfolio management, order execution), not {space}"
UNSUPPORTED_OBS = "{agent} needs a flat (1-D) Box observation space, not {space}"

# The actor's log-std is squashed into this range (CleanRL, SB3): wider makes early updates unstable.
LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


@dataclass
class SACParams:
    learning_rate: float = Field(3e-4, gt=0, le=1, description="Adam step size of the actor, the critics "
                                 "and alpha")
    gamma: float = Field(0.99, ge=0, le=1, description="Discount factor per step: how much a reward one bar "
                         "later is worth now")
    tau: float = Field(0.005, gt=0, le=1, description="Polyak rate of the target critics after every gradient "
                       "step: target <- tau * critic + (1 - tau) * target")
    buffer_size: int = Field(100_000, gt=0, description="Replay buffer capacity in transitions (the buffer is "
                             "refilled every epoch, so more than the epoch's env-steps has no effect)")
    learning_starts: int = Field(256, ge=0, description="Env-steps collected at the start of each epoch "
                                 "before the first gradient step")
    batch_size: int = Field(256, gt=0, description="Transitions sampled per gradient step")
    train_frequency: int = Field(1, gt=0, description="Steps of the batched env between two training phases "
                                 "(each step collects num_envs transitions)")
    gradient_steps: int = Field(1, gt=0, description="Gradient steps per training phase")
    alpha: float = Field(0.2, gt=0, description="Entropy weight: the initial value when autotune is on, the "
                         "fixed value otherwise")
    autotune: bool = Field(True, description="Learn alpha so that the policy's entropy tracks target_entropy")
    target_entropy: float | None = Field(None, description="Entropy the tuned policy aims at, in nats of the "
                                         "squashed action; None = -(action dimensions)")
    max_grad_norm: float = Field(10.0, gt=0, description="Gradients are rescaled to at most this global L2 norm")
    hidden: tuple[PositiveInt, ...] = Field((256, 256), min_length=1, description="Hidden layer widths of the "
                                            "actor and of each critic")
    activation: Literal["tanh", "relu", "elu"] = Field("relu", description="Activation between hidden layers")


def check_spaces(agent: str, observation_space: gym.Space, action_space: gym.Space) -> None:
    if not (isinstance(observation_space, gym.spaces.Box) and len(observation_space.shape) == 1):
        raise ValueError(UNSUPPORTED_OBS.format(agent=agent, space=observation_space))
    if not (isinstance(action_space, gym.spaces.Box) and len(action_space.shape) == 1
            and action_space.is_bounded("both")):
        raise ValueError(UNSUPPORTED_SPACE.format(agent=agent, space=action_space))


class SquashedGaussianActor(nn.Module):
    """pi(a|s): u ~ N(mean(s), std(s)), a = tanh(u) in [-1, 1]^dim."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: tuple[int, ...], activation: type[nn.Module]):
        super().__init__()
        self.net = mlp(obs_dim, hidden, 2 * act_dim, activation=activation, out_std=0.01)

    def _mean_log_std(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_std = self.net(obs).chunk(2, dim=-1)
        log_std = LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (torch.tanh(log_std) + 1.0)
        return mean, log_std

    def sample(self, obs: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(a, log pi(a|s)): a (B, dim) in [-1, 1] by the reparameterisation trick (differentiable),
        log-prob (B,) with the tanh change of variables."""
        mean, log_std = self._mean_log_std(obs)
        noise = torch.randn(mean.shape, generator=generator, device=generator.device).to(mean.device)
        u = mean + noise * log_std.exp()
        a = torch.tanh(u)
        # log N(u) - sum log(1 - tanh(u)^2), the latter in the stable form 2 (log 2 - u - softplus(-2u)).
        log_prob = (-0.5 * noise.square() - log_std - _HALF_LOG_2PI).sum(-1)
        log_prob = log_prob - (2.0 * (math.log(2.0) - u - F.softplus(-2.0 * u))).sum(-1)
        return a, log_prob

    def mode(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self._mean_log_std(obs)[0])


class SAC(OffPolicyAgent):
    name: ClassVar[str] = "sac"
    Params: ClassVar[type] = SACParams
    tasks: ClassVar[frozenset[str]] = frozenset({"portfolio_management", "order_execution"})

    def __init__(self, env: BatchedEnv, params=None, *, device: str | torch.device = "auto", seed: int = 0):
        super().__init__(env, params, device=device, seed=seed)
        check_spaces(self.name, self.single_observation_space, self.single_action_space)
        p = self.params
        space = self.single_action_space
        obs_dim, act_dim = int(self.single_observation_space.shape[0]), int(space.shape[0])
        self._action_shape = (act_dim,)
        low, high = np.asarray(space.low, dtype=np.float64), np.asarray(space.high, dtype=np.float64)
        self._low = torch.as_tensor(low, dtype=torch.float32, device=self.device)
        self._high = torch.as_tensor(high, dtype=torch.float32, device=self.device)
        self._mid = torch.as_tensor((high + low) / 2, dtype=torch.float32, device=self.device)
        self._half = torch.as_tensor((high - low) / 2, dtype=torch.float32, device=self.device)
        act = ACTIVATIONS[p.activation]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.actor = SquashedGaussianActor(obs_dim, act_dim, tuple(p.hidden), act)
            # Near-zero initial Q values: the rewards are fractions of the account (~1e-3 per bar),
            # which O(1) initial outputs would bury.
            self.q1 = mlp(obs_dim + act_dim, tuple(p.hidden), 1, activation=act, out_std=0.01)
            self.q2 = mlp(obs_dim + act_dim, tuple(p.hidden), 1, activation=act, out_std=0.01)
        for net in (self.actor, self.q1, self.q2):
            net.to(self.device)
        self.q1_target = copy.deepcopy(self.q1).requires_grad_(False)
        self.q2_target = copy.deepcopy(self.q2).requires_grad_(False)
        self.actor_optimizer = torch.optim.Adam(self.actor.parameters(), lr=p.learning_rate)
        self.q_optimizer = torch.optim.Adam([*self.q1.parameters(), *self.q2.parameters()], lr=p.learning_rate)
        self.log_alpha = torch.tensor(math.log(p.alpha), device=self.device, requires_grad=p.autotune)
        self.alpha_optimizer = torch.optim.Adam([self.log_alpha], lr=p.learning_rate) if p.autotune else None
        self.target_entropy = float(-act_dim if p.target_entropy is None else p.target_entropy)
        self._act_generator = torch.Generator(device=self.device)
        self._act_generator.manual_seed(seed)

    # -- acting -------------------------------------------------------------------------------------

    def _to_env(self, squashed: torch.Tensor) -> torch.Tensor:
        """A squashed action in [-1, 1] as the env takes it, clipped against float rounding."""
        return torch.maximum(torch.minimum(self._mid + self._half * squashed, self._high), self._low)

    @torch.no_grad()
    def act(self, obs: torch.Tensor, deterministic: bool = True) -> torch.Tensor:
        obs = torch.as_tensor(obs, dtype=torch.float32, device=self.device)
        squashed = self.actor.mode(obs) if deterministic else self.actor.sample(obs, self._act_generator)[0]
        return self._to_env(squashed)

    @torch.no_grad()
    def _explore(self, obs: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        squashed, _ = self.actor.sample(obs, generator)
        return squashed, self._to_env(squashed)

    # -- update -------------------------------------------------------------------------------------

    def _q(self, net: nn.Module, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return net(torch.cat((obs, action), dim=-1)).squeeze(-1)

    def train_step(self, batch: Transitions, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """One step of each: critics on the soft Bellman target, actor on E[alpha log pi - min Q],
        alpha on -log_alpha * E[log pi + target_entropy], then the Polyak target update."""
        p = self.params
        alpha = self.log_alpha.detach().exp()
        with torch.no_grad():
            next_a, next_logp = self.actor.sample(batch.next_obs, generator)
            next_q = torch.min(self._q(self.q1_target, batch.next_obs, next_a),
                               self._q(self.q2_target, batch.next_obs, next_a)) - alpha * next_logp
            target = batch.rewards + p.gamma * (1.0 - batch.terminated) * next_q
        q1, q2 = self._q(self.q1, batch.obs, batch.actions), self._q(self.q2, batch.obs, batch.actions)
        q_loss = F.mse_loss(q1, target) + F.mse_loss(q2, target)
        self.q_optimizer.zero_grad(set_to_none=True)
        q_loss.backward()
        torch.nn.utils.clip_grad_norm_([*self.q1.parameters(), *self.q2.parameters()], p.max_grad_norm)
        self.q_optimizer.step()

        a, logp = self.actor.sample(batch.obs, generator)
        q_pi = torch.min(self._q(self.q1, batch.obs, a), self._q(self.q2, batch.obs, a))
        policy_loss = (alpha * logp - q_pi).mean()
        self.actor_optimizer.zero_grad(set_to_none=True)
        policy_loss.backward()
        torch.nn.utils.clip_grad_norm_(self.actor.parameters(), p.max_grad_norm)
        self.actor_optimizer.step()

        alpha_loss = torch.zeros((), device=self.device)
        if self.alpha_optimizer is not None:
            alpha_loss = -(self.log_alpha * (logp.detach() + self.target_entropy)).mean()
            self.alpha_optimizer.zero_grad(set_to_none=True)
            alpha_loss.backward()
            self.alpha_optimizer.step()

        with torch.no_grad():
            for target_net, net in ((self.q1_target, self.q1), (self.q2_target, self.q2)):
                for target_param, param in zip(target_net.parameters(), net.parameters()):
                    target_param.lerp_(param, p.tau)
        return {
            "train/loss": (q_loss + policy_loss).detach(),
            "train/q_loss": q_loss.detach(),
            "train/value_loss": q_loss.detach(),
            "train/policy_loss": policy_loss.detach(),
            "train/entropy": -logp.detach().mean(),
            "train/alpha_loss": alpha_loss.detach(),
            "train/q_value": q1.detach().mean(),
        }

    def _loss_keys(self) -> tuple[str, ...]:
        return ("train/loss", "train/q_loss", "train/value_loss", "train/policy_loss", "train/entropy",
                "train/alpha_loss", "train/q_value")

    def learn_epoch(self, env: BatchedEnv, n_steps: int, *, seed: int,
                    progress: Progress = no_progress) -> dict[str, float]:
        metrics = super().learn_epoch(env, n_steps, seed=seed, progress=progress)
        metrics["train/alpha"] = float(self.log_alpha.detach().exp())
        return metrics

    # -- state --------------------------------------------------------------------------------------

    def state_dict(self) -> dict:
        return {
            "actor": self.actor.state_dict(),
            "q1": self.q1.state_dict(),
            "q2": self.q2.state_dict(),
            "q1_target": self.q1_target.state_dict(),
            "q2_target": self.q2_target.state_dict(),
            "actor_optimizer": self.actor_optimizer.state_dict(),
            "q_optimizer": self.q_optimizer.state_dict(),
            "log_alpha": self.log_alpha.detach().clone(),
            "alpha_optimizer": None if self.alpha_optimizer is None else self.alpha_optimizer.state_dict(),
            "env_steps": self.env_steps,
            "act_generator": self._act_generator.get_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.actor.load_state_dict(state["actor"])
        self.q1.load_state_dict(state["q1"])
        self.q2.load_state_dict(state["q2"])
        self.q1_target.load_state_dict(state["q1_target"])
        self.q2_target.load_state_dict(state["q2_target"])
        self.actor_optimizer.load_state_dict(state["actor_optimizer"])
        self.q_optimizer.load_state_dict(state["q_optimizer"])
        with torch.no_grad():
            self.log_alpha.copy_(state["log_alpha"])
        if self.alpha_optimizer is not None and state["alpha_optimizer"] is not None:
            self.alpha_optimizer.load_state_dict(state["alpha_optimizer"])
        self.env_steps = int(state["env_steps"])
        self._act_generator.set_state(state["act_generator"])
