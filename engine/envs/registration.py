"""Gymnasium ids of the tasks (engine.tasks)."""
from __future__ import annotations

import gymnasium as gym

from engine.tasks import TASK_SPECS

ENV_IDS = {name: spec.env_id for name, spec in TASK_SPECS.items()}


def register_envs() -> None:
    for spec in TASK_SPECS.values():
        if spec.env_id not in gym.registry:
            gym.register(id=spec.env_id, entry_point=spec.single_env)
