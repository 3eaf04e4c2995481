"""Actor-critic networks for the on-policy agents (PPO, A2C).

Two policy heads, chosen by the action space:
- Box (portfolio logits, execution fraction): a diagonal Gaussian whose mean is the actor MLP's
  output and whose log-std is one learned parameter per action dimension, independent of the state
  (CleanRL's ppo_continuous_action.py, SB3's default). Sampled actions are NOT clipped here: the
  log-prob must be of the action actually sampled; the agent clips what it sends to the env.
- Discrete (trading positions): a categorical over the actor MLP's logits.

The actor and the critic are separate MLPs by default (what CleanRL and SB3 do for PPO); with
`shared=True` they share the hidden layers and only the last linear layers differ.

The distributions are written out by hand instead of using torch.distributions: the rollout calls
them once per env step on batches of up to 1024 rows, and the argument validation and object
construction of torch.distributions cost more than the arithmetic at that size.
"""
from __future__ import annotations

import math

import gymnasium as gym
import torch
from torch import nn
from torch.nn import functional as F

from engine.agents.networks import layer_init, mlp

ACTIVATIONS: dict[str, type[nn.Module]] = {"tanh": nn.Tanh, "relu": nn.ReLU, "elu": nn.ELU}

UNSUPPORTED_SPACE = "{agent} supports Box (1-D) and Discrete action spaces, not {space}"
UNSUPPORTED_OBS = "{agent} needs a flat (1-D) Box observation space, not {space}"

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def check_spaces(agent: str, observation_space: gym.Space, action_space: gym.Space) -> None:
    """ValueError naming the agent and the space when the policy cannot handle it."""
    if not (isinstance(observation_space, gym.spaces.Box) and len(observation_space.shape) == 1):
        raise ValueError(UNSUPPORTED_OBS.format(agent=agent, space=observation_space))
    box = isinstance(action_space, gym.spaces.Box) and len(action_space.shape) == 1
    if not (box or isinstance(action_space, gym.spaces.Discrete)):
        raise ValueError(UNSUPPORTED_SPACE.format(agent=agent, space=action_space))


def _after_first(seq: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """Apply the layers of `seq` after its first one."""
    for layer in list(seq)[1:]:
        x = layer(x)
    return x


class ActorCritic(nn.Module):
    """pi(a|s) and V(s) for a flat observation.

    obs_dim: length of the flat observation.
    action_space: gymnasium Box (1-D) or Discrete.
    hidden: widths of the hidden layers (of each MLP, or of the shared trunk).
    activation: "tanh" | "relu" | "elu".
    shared: one trunk for actor and critic instead of two MLPs.
    log_std_init: initial log standard deviation of the Gaussian (Box only).
    """

    def __init__(self, obs_dim: int, action_space: gym.Space, *, hidden: tuple[int, ...] = (64, 64),
                 activation: str = "tanh", shared: bool = False, log_std_init: float = 0.0):
        super().__init__()
        self.discrete = isinstance(action_space, gym.spaces.Discrete)
        out_dim = int(action_space.n) if self.discrete else int(action_space.shape[0])
        act = ACTIVATIONS[activation]
        self.shared = shared
        # Small last-layer weights (std 0.01) start the policy near uniform / near the zero mean,
        # and the critic's std 1.0 keeps early value estimates on the reward's scale (CleanRL).
        if shared:
            self.trunk = mlp(obs_dim, tuple(hidden[:-1]), hidden[-1], activation=act, out_std=math.sqrt(2))
            self.trunk.append(act())
            self.actor = layer_init(nn.Linear(hidden[-1], out_dim), std=0.01)
            self.critic = layer_init(nn.Linear(hidden[-1], 1), std=1.0)
        else:
            self.trunk = nn.Identity()
            self.actor = mlp(obs_dim, tuple(hidden), out_dim, activation=act, out_std=0.01)
            self.critic = mlp(obs_dim, tuple(hidden), 1, activation=act, out_std=1.0)
        if not self.discrete:
            self.log_std = nn.Parameter(torch.full((out_dim,), float(log_std_init)))

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        """V(s), shape (B,)."""
        return self.critic(self.trunk(obs)).squeeze(-1)

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(actor output, value): the Gaussian mean (B, dim) or the categorical logits (B, n), and (B,)."""
        if self.shared:
            h = self.trunk(obs)
            return self.actor(h), self.critic(h).squeeze(-1)
        # Both first layers read the same wide observation (3220 values for dj30), and those two
        # layers are most of the cost of a PPO update. One matmul against their stacked weights is
        # the same arithmetic as two, and ~10% faster on the CPU (one wider GEMM, forward and backward).
        a0, c0 = self.actor[0], self.critic[0]
        h = F.linear(obs, torch.cat((a0.weight, c0.weight)), torch.cat((a0.bias, c0.bias)))
        h_actor, h_critic = h.split((a0.out_features, c0.out_features), dim=-1)
        return _after_first(self.actor, h_actor), _after_first(self.critic, h_critic).squeeze(-1)

    def sample(self, obs: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(action, log_prob, value) with the action drawn from `generator`: float (B, dim) unclipped,
        or int64 (B,)."""
        out, value = self(obs)
        if self.discrete:
            # Gumbel-max: argmax(logits + Gumbel noise) is a categorical sample, one op per step.
            u = torch.rand(out.shape, generator=generator, device=out.device, dtype=out.dtype)
            action = torch.argmax(out - torch.log(-torch.log(u.clamp_min(1e-20))), dim=-1)
        else:
            noise = torch.randn(out.shape, generator=generator, device=out.device, dtype=out.dtype)
            action = out + noise * self.log_std.exp()
        return action, self.log_prob(out, action), value

    def log_prob(self, out: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """log pi(action) under the actor output `out`, shape (B,)."""
        if self.discrete:
            return torch.log_softmax(out, dim=-1).gather(-1, action.long().unsqueeze(-1)).squeeze(-1)
        z = (action - out) * torch.exp(-self.log_std)
        return (-0.5 * z.square() - self.log_std - _HALF_LOG_2PI).sum(-1)

    def entropy(self, out: torch.Tensor) -> torch.Tensor:
        """Entropy of the policy at each row, shape (B,)."""
        if self.discrete:
            logp = torch.log_softmax(out, dim=-1)
            return -(logp.exp() * logp).sum(-1)
        return (0.5 + _HALF_LOG_2PI + self.log_std).sum().expand(out.shape[0])

    def evaluate(self, obs: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(log_prob, entropy, value) of stored actions under the current weights (for the update)."""
        out, value = self(obs)
        return self.log_prob(out, action), self.entropy(out), value

    def mode(self, obs: torch.Tensor) -> torch.Tensor:
        """The most likely action: the Gaussian mean, or the argmax of the logits."""
        out = self.actor(self.trunk(obs))
        return out.argmax(-1) if self.discrete else out
