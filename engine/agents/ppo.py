"""Proximal Policy Optimization (Schulman et al. 2017), read like CleanRL's ppo_continuous_action.py.

Top to bottom: the hyperparameters (PPOParams), then PPO's clipped update. What PPO shares with A2C
(the actor-critic, the rollout, the epoch loop) is engine/agents/on_policy.py's OnPolicyAgent; the
networks live in engine/agents/policies.py and GAE in engine/agents/buffers.py.
"""
from __future__ import annotations

from typing import ClassVar, Literal

import torch
from pydantic import Field, PositiveInt
from pydantic.dataclasses import dataclass

from engine.agents.buffers import RolloutBuffer
from engine.agents.on_policy import OnPolicyAgent


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
