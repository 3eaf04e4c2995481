"""The contract between agents, the trainer and the backtester (Stable-Baselines3's shape).

An agent owns its networks, optimizers and update rule. The trainer owns epochs, evaluation,
checkpoints and callbacks; it calls `learn_epoch` once per epoch on a batched env and `act` to
evaluate. Baselines are agents with `trainable = False`.
"""
from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from engine.device import resolve_device, rng_state, set_rng_state
from engine.envs.base import BatchedEnv
from engine.tasks import TASKS

# 2: the numpy RNG state is stored as plain lists. Format 1 stored it as an ndarray, which
# weights_only loading accepts only with numpy's array constructors allowed (NUMPY_ARRAY_DATA).
CHECKPOINT_FORMAT = 2
# What a numpy array is rebuilt from: data constructors that run no code of the file's choosing.
NUMPY_ARRAY_DATA = (np._core.multiarray._reconstruct, np.ndarray, np.dtype, type(np.dtype(np.uint32)))
# The `tasks` of an agent that acts in any env's action space.
ALL_TASKS: frozenset[str] = frozenset(TASKS)

# What learn_epoch calls between its rollouts and updates, with the env-steps done so far: the
# trainer's way of asking its callbacks whether to go on (it raises to end the epoch early).
Progress = Callable[[int], None]


def no_progress(steps_done: int) -> None:
    """The Progress of an epoch nobody watches."""


class Agent(ABC):
    name: ClassVar[str]
    # The names of the tasks (engine.tasks) whose envs this agent acts in.
    tasks: ClassVar[frozenset[str]]
    trainable: ClassVar[bool] = True
    # The dataclass (pydantic.dataclasses) holding this agent's hyperparameters.
    Params: ClassVar[type]

    def __init__(self, env: BatchedEnv, params: Any = None, *, device: str | torch.device = "auto", seed: int = 0):
        self.params = params if params is not None else self.Params()
        self.device = resolve_device(device)
        self.seed = seed
        self.single_observation_space = env.single_observation_space
        self.single_action_space = env.single_action_space
        self.obs_layout = env.obs_layout

    @abstractmethod
    def act(self, obs: torch.Tensor, deterministic: bool = True) -> torch.Tensor:
        """Actions (B, ...) for observations (B, obs_dim), on the env's device and in its action space."""

    def learn_epoch(self, env: BatchedEnv, n_steps: int, *, seed: int,
                    progress: Progress = no_progress) -> dict[str, float]:
        """Collect about `n_steps` env-steps (summed over the batch) from `env` and update on them.

        `progress(steps_done)` is called after each rollout and update (each env-step of the
        off-policy agents). It may raise to end the epoch there: the trainer does to stop or pause
        mid-epoch, and discards the agent's state, which is then half way through the epoch.

        The epoch starts with `env.reset(seed=seed)` and draws its own randomness (action sampling,
        minibatch order, exploration) from a torch.Generator seeded with `seed`, so an epoch is a
        pure function of (weights, optimizer state, seed): this is what makes stop-and-resume give the
        same metrics as an uninterrupted run.

        Returns namespaced scalar metrics: "train/loss", "train/policy_loss", "train/value_loss",
        "train/entropy", "train/reward" (mean reward per env-step), ... as the algorithm has them.
        """
        raise NotImplementedError(f"{self.name} does not learn")

    def _begin_epoch(self, env: BatchedEnv, n_steps: int, seed: int) -> tuple[torch.Generator, torch.Tensor]:
        """How every learn_epoch starts: the epoch's generator seeded with `seed`, and the first
        observations of `env.reset(seed=seed)` on the agent's device."""
        if n_steps <= 0:
            raise ValueError(f"n_steps must be positive, got {n_steps}")
        generator = torch.Generator(device=self.device)
        generator.manual_seed(seed)
        return generator, env.reset(seed=seed).to(self.device)

    def state_dict(self) -> dict:
        """Networks and optimizers; what a checkpoint needs besides RNG states and the epoch."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore what state_dict returned. An agent without networks has nothing to restore, and
        a checkpoint that holds some was written by another agent."""
        if state:
            raise ValueError(f"{self.name} has no state to load; the checkpoint holds {sorted(state)}")

    def save(self, path: str | Path, *, epoch: int, extra: dict | None = None) -> None:
        """Write weights, optimizer, RNG states and epoch to `path` (atomically: a crash mid-write
        leaves the previous checkpoint intact)."""
        path = Path(path)
        payload = {
            "format": CHECKPOINT_FORMAT,
            "agent": self.name,
            "params": dataclasses.asdict(self.params),
            "state": self.state_dict(),
            "rng": rng_state(),
            "epoch": epoch,
            "extra": extra or {},
        }
        tmp = path.with_name(path.name + ".tmp")
        # Through a Python file: a folder that refuses the write then raises an OSError with the path
        # and errno (PermissionError, OSError ENOSPC), where torch's own opening raises a RuntimeError
        # that names neither.
        with open(tmp, "wb") as file:
            torch.save(payload, file)
        tmp.replace(path)

    def load(self, path: str | Path, *, restore_rng: bool = True) -> dict:
        """Load a checkpoint written by `save`; returns it (epoch and extra included).

        A checkpoint is data, never code: it is read with weights_only=True, so a file that holds
        anything but tensors and plain values (a pickle planted to run code) raises
        pickle.UnpicklingError instead of running.
        """
        with torch.serialization.safe_globals(list(NUMPY_ARRAY_DATA)):
            payload = torch.load(Path(path), map_location="cpu", weights_only=True)
        if payload.get("agent") != self.name:
            raise ValueError(f"checkpoint {path} is for agent {payload.get('agent')!r}, not {self.name!r}")
        self.load_state_dict(payload["state"])
        if restore_rng:
            set_rng_state(payload["rng"])
        return payload
