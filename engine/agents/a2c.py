"""Advantage Actor-Critic (synchronous A3C, Mnih et al. 2016), as Stable-Baselines3 ships it.

Same networks and rollout as PPO (engine.agents.on_policy.OnPolicyAgent); the update is one plain
policy-gradient step per short rollout, no ratio, no clipping, no minibatches. The optimizer is
RMSprop (alpha 0.99, eps 1e-5: SB3's A2C default) unless `optimizer="adam"`.
"""
from __future__ import annotations

from typing import ClassVar, Literal

import torch
from pydantic import Field, PositiveInt
from pydantic.dataclasses import dataclass

from engine.agents.buffers import RolloutBuffer
from engine.agents.on_policy import OnPolicyAgent


@dataclass
class A2CParams:
    n_steps: int = Field(5, gt=0, description="Steps collected per env before each gradient step")
    learning_rate: float = Field(7e-4, gt=0, le=1, description="Optimizer step size")
    optimizer: Literal["rmsprop", "adam"] = Field("rmsprop", description="RMSprop (alpha 0.99, eps 1e-5, as in "
                                                  "the A2C paper and SB3) or Adam (eps 1e-5)")
    gamma: float = Field(0.99, ge=0, le=1, description="Discount factor per step: how much a reward one bar "
                         "later is worth now")
    gae_lambda: float = Field(1.0, ge=0, le=1, description="GAE lambda: 1 = n-step returns (classic A2C), "
                              "lower = smoother, more biased advantages")
    ent_coef: float = Field(0.0, ge=0, description="Weight of the entropy bonus (more = more exploration)")
    vf_coef: float = Field(0.5, ge=0, description="Weight of the value-function loss")
    max_grad_norm: float = Field(0.5, gt=0, description="Gradients are rescaled to at most this global L2 norm")
    hidden: tuple[PositiveInt, ...] = Field((64, 64), min_length=1, description="Hidden layer widths of the "
                                            "actor and of the critic")
    activation: Literal["tanh", "relu", "elu"] = Field("tanh", description="Activation between hidden layers")
    shared_network: bool = Field(False, description="Actor and critic share their hidden layers")
    log_std_init: float = Field(0.0, ge=-20, le=5, description="Initial log standard deviation of the "
                                "Gaussian policy (continuous actions only); 0 = std 1")
    normalize_advantage: bool = Field(False, description="Standardise advantages within each rollout")


class A2C(OnPolicyAgent):
    name: ClassVar[str] = "a2c"
    Params: ClassVar[type] = A2CParams

    def _make_optimizer(self) -> torch.optim.Optimizer:
        params, lr = self.policy.parameters(), self.params.learning_rate
        if self.params.optimizer == "adam":
            return torch.optim.Adam(params, lr=lr, eps=1e-5)
        return torch.optim.RMSprop(params, lr=lr, alpha=0.99, eps=1e-5)

    def _update(self, buffer: RolloutBuffer, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """One gradient step on L = -E[A log pi(a|s)] - ent_coef * H + vf_coef * E[(V - R)^2] over the
        whole rollout (the generator is unused: there is nothing to shuffle)."""
        p = self.params
        (mb,) = buffer.minibatches(buffer.pos * buffer.num_envs)
        log_prob, entropy, value = self.policy.evaluate(mb.obs, mb.actions)
        adv = self._advantages(mb, p.normalize_advantage)
        policy_loss = -(adv * log_prob).mean()
        value_loss = (value - mb.returns).square().mean()
        entropy = entropy.mean()
        loss = policy_loss - p.ent_coef * entropy + p.vf_coef * value_loss
        self._step(loss)
        return {
            "train/loss": loss.detach(),
            "train/policy_loss": policy_loss.detach(),
            "train/value_loss": value_loss.detach(),
            "train/entropy": entropy.detach(),
            "train/explained_variance": self.explained_variance(buffer),
        }
