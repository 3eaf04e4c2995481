"""Small building blocks shared by the agents (CleanRL's layer_init, SB3's MLP sizes)."""
from __future__ import annotations

import numpy as np
from torch import nn


def layer_init(layer: nn.Linear, std: float = float(np.sqrt(2)), bias: float = 0.0) -> nn.Linear:
    """Orthogonal weights, constant bias: what PPO implementations use for stable early updates."""
    nn.init.orthogonal_(layer.weight, std)
    nn.init.constant_(layer.bias, bias)
    return layer


def mlp(in_dim: int, hidden: tuple[int, ...], out_dim: int, *, activation: type[nn.Module] = nn.Tanh,
        out_std: float = 1.0) -> nn.Sequential:
    """in -> hidden... -> out, `activation` between layers, none after the last."""
    layers: list[nn.Module] = []
    last = in_dim
    for width in hidden:
        layers += [layer_init(nn.Linear(last, width)), activation()]
        last = width
    layers.append(layer_init(nn.Linear(last, out_dim), std=out_std))
    return nn.Sequential(*layers)
