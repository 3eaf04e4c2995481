"""Episode statistics of a training epoch, kept on the agent's device while the batched env steps."""
from __future__ import annotations

import math

import torch


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
