"""Double DQN (van Hasselt, Guez & Silver 2016) for the discrete trading positions, read like
CleanRL's dqn.py.

An online Q network picks the next action, a target network evaluates it:

    y = r + gamma * (1 - terminated) * Q_target(s', argmax_a Q_online(s', a))

which removes the max-operator's overestimation of plain DQN. Huber loss on Q_online(s, a) - y,
epsilon-greedy exploration with epsilon decaying linearly over the agent's env-steps, replay and the
epoch loop from engine/agents/replay.py (where truncation bootstraps and termination does not).
"""
from __future__ import annotations

import copy
from typing import ClassVar, Literal

import gymnasium as gym
import torch
import torch.nn.functional as F
from pydantic import Field, PositiveInt
from pydantic.dataclasses import dataclass

from engine.agents.base import Progress, no_progress
from engine.agents.networks import mlp
from engine.agents.policies import ACTIVATIONS
from engine.agents.replay import OffPolicyAgent, Transitions
from engine.envs.base import BatchedEnv

UNSUPPORTED_SPACE = "{agent} needs a Discrete action space (algorithmic trading), not {space}"
UNSUPPORTED_OBS = "{agent} needs a flat (1-D) Box observation space, not {space}"


@dataclass
class DQNParams:
    learning_rate: float = Field(3e-4, gt=0, le=1, description="Adam step size")
    gamma: float = Field(0.99, ge=0, le=1, description="Discount factor per step: how much a reward one bar "
                         "later is worth now")
    buffer_size: int = Field(100_000, gt=0, description="Replay buffer capacity in transitions (the buffer is "
                             "refilled every epoch, so more than the epoch's env-steps has no effect)")
    learning_starts: int = Field(512, ge=0, description="Env-steps collected at the start of each epoch "
                                 "before the first gradient step")
    batch_size: int = Field(128, gt=0, description="Transitions sampled per gradient step")
    train_frequency: int = Field(1, gt=0, description="Steps of the batched env between two training phases "
                                 "(each step collects num_envs transitions)")
    gradient_steps: int = Field(1, gt=0, description="Gradient steps per training phase")
    target_update_interval: int = Field(250, gt=0, description="Gradient steps between two target-network "
                                        "updates")
    tau: float = Field(1.0, gt=0, le=1, description="Target update rate: 1 = copy the online network, "
                       "smaller = Polyak average target <- tau * online + (1 - tau) * target")
    exploration_initial_eps: float = Field(1.0, ge=0, le=1, description="Probability of a random action at "
                                           "the start of training")
    exploration_final_eps: float = Field(0.05, ge=0, le=1, description="Probability of a random action once "
                                         "the schedule has run out")
    exploration_steps: int = Field(50_000, gt=0, description="Env-steps (summed over the parallel envs) over "
                                   "which epsilon falls linearly from the initial to the final value")
    max_grad_norm: float = Field(10.0, gt=0, description="Gradients are rescaled to at most this global L2 norm")
    hidden: tuple[PositiveInt, ...] = Field((64, 64), min_length=1, description="Hidden layer widths of the "
                                            "Q network")
    activation: Literal["tanh", "relu", "elu"] = Field("relu", description="Activation between hidden layers")


def check_spaces(agent: str, observation_space: gym.Space, action_space: gym.Space) -> None:
    if not (isinstance(observation_space, gym.spaces.Box) and len(observation_space.shape) == 1):
        raise ValueError(UNSUPPORTED_OBS.format(agent=agent, space=observation_space))
    if not isinstance(action_space, gym.spaces.Discrete):
        raise ValueError(UNSUPPORTED_SPACE.format(agent=agent, space=action_space))


class DQN(OffPolicyAgent):
    name: ClassVar[str] = "dqn"
    Params: ClassVar[type] = DQNParams
    tasks: ClassVar[frozenset[str]] = frozenset({"algorithmic_trading"})
    _action_dtype = torch.int64

    def __init__(self, env: BatchedEnv, params=None, *, device: str | torch.device = "auto", seed: int = 0):
        super().__init__(env, params, device=device, seed=seed)
        check_spaces(self.name, self.single_observation_space, self.single_action_space)
        p = self.params
        self.n_actions = int(self.single_action_space.n)
        obs_dim = int(self.single_observation_space.shape[0])
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            # Rewards here are fractions of the account (~1e-2 per bar): a near-zero initial Q lets the
            # small differences between actions show after a few updates instead of being buried
            # under O(1) initial outputs.
            self.q_net = mlp(obs_dim, tuple(p.hidden), self.n_actions, activation=ACTIVATIONS[p.activation],
                             out_std=0.01)
        self.q_net.to(self.device)
        self.target_net = copy.deepcopy(self.q_net).requires_grad_(False)
        self.optimizer = torch.optim.Adam(self.q_net.parameters(), lr=p.learning_rate)
        self.gradient_steps_done = 0
        self._act_generator = torch.Generator(device=self.device)
        self._act_generator.manual_seed(seed)

    def epsilon(self) -> float:
        """The exploration rate at the current schedule position (`env_steps`)."""
        p = self.params
        progress = min(self.env_steps / p.exploration_steps, 1.0)
        return p.exploration_initial_eps + progress * (p.exploration_final_eps - p.exploration_initial_eps)

    def _epsilon_greedy(self, obs: torch.Tensor, eps: float, generator: torch.Generator) -> torch.Tensor:
        greedy = self.q_net(obs).argmax(-1)
        shape = (obs.shape[0],)
        random = torch.randint(self.n_actions, shape, generator=generator, device=generator.device).to(self.device)
        explore = torch.rand(shape, generator=generator, device=generator.device).to(self.device) < eps
        return torch.where(explore, random, greedy)

    @torch.no_grad()
    def act(self, obs: torch.Tensor, deterministic: bool = True) -> torch.Tensor:
        """The greedy action; with deterministic=False, epsilon-greedy at the final epsilon."""
        obs = torch.as_tensor(obs, dtype=torch.float32, device=self.device)
        if deterministic:
            return self.q_net(obs).argmax(-1)
        return self._epsilon_greedy(obs, self.params.exploration_final_eps, self._act_generator)

    @torch.no_grad()
    def _explore(self, obs: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        action = self._epsilon_greedy(obs, self.epsilon(), generator)
        return action, action

    def train_step(self, batch: Transitions, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """One gradient step of Huber(Q_online(s, a) - y) with the double-DQN target y (module
        docstring); every `target_update_interval` steps the target moves to the online net (by tau).
        The generator is unused: the update draws nothing."""
        p = self.params
        with torch.no_grad():
            next_action = self.q_net(batch.next_obs).argmax(-1, keepdim=True)
            next_q = self.target_net(batch.next_obs).gather(-1, next_action).squeeze(-1)
            target = batch.rewards + p.gamma * (1.0 - batch.terminated) * next_q
        q = self.q_net(batch.obs).gather(-1, batch.actions.unsqueeze(-1)).squeeze(-1)
        loss = F.smooth_l1_loss(q, target)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.q_net.parameters(), p.max_grad_norm)
        self.optimizer.step()
        self.gradient_steps_done += 1
        if self.gradient_steps_done % p.target_update_interval == 0:
            with torch.no_grad():
                for target_param, param in zip(self.target_net.parameters(), self.q_net.parameters()):
                    if p.tau == 1.0:
                        target_param.copy_(param)
                    else:
                        target_param.lerp_(param, p.tau)
        return {"train/loss": loss.detach(), "train/q_loss": loss.detach(), "train/q_value": q.detach().mean()}

    def _loss_keys(self) -> tuple[str, ...]:
        return ("train/loss", "train/q_loss", "train/q_value")

    def learn_epoch(self, env: BatchedEnv, n_steps: int, *, seed: int,
                    progress: Progress = no_progress) -> dict[str, float]:
        metrics = super().learn_epoch(env, n_steps, seed=seed, progress=progress)
        metrics["train/epsilon"] = self.epsilon()
        return metrics

    def state_dict(self) -> dict:
        return {
            "q_net": self.q_net.state_dict(),
            "target_net": self.target_net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "env_steps": self.env_steps,
            "gradient_steps": self.gradient_steps_done,
            "act_generator": self._act_generator.get_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.q_net.load_state_dict(state["q_net"])
        self.target_net.load_state_dict(state["target_net"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.env_steps = int(state["env_steps"])
        self.gradient_steps_done = int(state["gradient_steps"])
        self._act_generator.set_state(state["act_generator"])
