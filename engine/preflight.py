"""Would this config run on this data and this machine? Asked when a strategy is saved, so that a config
that cannot train is refused then, naming the field and the limit, instead of failing in its first
second of training (or its first hour, out of memory).

Every problem is reported in one round, as pydantic's ValidationError with the field's path, like the
config's own validation: ("env", "window"), ("split",), ("trainer", "device"), ("dataset",),
("agent_params", "hidden").
"""
from __future__ import annotations

from typing import Any

import torch
from pydantic import ValidationError
from pydantic_core import PydanticCustomError

from engine.config import WINDOW_TOO_LONG, RunConfig
from engine.data.errors import DataError
from engine.data.market import MarketData
from engine.data.splits import split_market
from engine.envs import make_env
from engine.tasks import TASK_SPECS

TOO_FEW_ASSETS = "{task} needs at least {need} assets; this dataset has {have} ({tickers})"
NO_SUCH_DEVICE = "device {device!r} is not on this machine ({have}): use auto or cpu"
TOO_LARGE = (
    "about {params:,} parameters, {need:.1f} GB with their gradients and the optimizer's state; "
    "this machine has {have:.1f} GB of memory"
)
# float32 weights, their gradients and Adam's two moments.
BYTES_PER_PARAMETER = 4 * 4
# Networks an agent keeps of that size: an actor and a critic; SAC two critics and their targets too.
NETWORK_COPIES = {"sac": 5}
DEFAULT_COPIES = 2


def preflight(config: RunConfig, market: MarketData, *, memory_bytes: int) -> None:
    """Raise ValidationError naming every reason `config` cannot run on `market` on a machine of
    `memory_bytes`: too few assets for its task, a split without bars or a window longer than a split,
    a device this machine does not have, a network that does not fit in memory."""
    errors = [*_assets(config, market), *_device(config)]
    splits = None
    try:
        splits = split_market(market, **config.split.as_kwargs())
    except DataError as error:
        errors.append(_error(("split",), error.problem))  # it names the split, and the data's dates
    if splits is not None:
        window = int(config.env.get("window", 1))
        # The shortest split is the limit a person has to meet.
        name, bars = min(splits.items(), key=lambda item: len(item[1]))
        if window > len(bars):
            errors.append(_error(("env", "window"), WINDOW_TOO_LONG.format(window=window, split=name, bars=len(bars))))
    if not errors and splits is not None:
        errors += _memory(config, market, splits.train, memory_bytes=memory_bytes)
    if errors:
        raise ValidationError.from_exception_data("RunConfig", errors)


def _assets(config: RunConfig, market: MarketData) -> list[dict]:
    need = TASK_SPECS[config.task].min_assets
    if market.n_assets >= need:
        return []
    message = TOO_FEW_ASSETS.format(task=TASK_SPECS[config.task].label, need=need, have=market.n_assets,
                                    tickers=", ".join(market.tickers))
    return [_error(("dataset",), message)]


def _device(config: RunConfig) -> list[dict]:
    device = config.trainer.device
    if device in ("auto", "cpu"):
        return []
    if device == "mps":
        ok, have = torch.backends.mps.is_available(), "no MPS device"
    else:
        count = torch.cuda.device_count()
        index = int(device.partition(":")[2] or 0)
        ok = index < count
        have = f"CUDA devices cuda:0..cuda:{count - 1}" if count else "no CUDA device"
    return [] if ok else [_error(("trainer", "device"), NO_SUCH_DEVICE.format(device=device, have=have))]


def _memory(config: RunConfig, market: MarketData, train: range, *, memory_bytes: int) -> list[dict]:
    hidden = config.agent_params.get("hidden")
    if not hidden:
        return []
    env = make_env(config.task, market, train, config.env_params(), num_envs=1)
    widths = [int(env.single_observation_space.shape[0]), *hidden]
    params = sum(a * b + b for a, b in zip(widths, widths[1:])) * NETWORK_COPIES.get(config.agent, DEFAULT_COPIES)
    need = params * BYTES_PER_PARAMETER
    if need <= memory_bytes:
        return []
    message = TOO_LARGE.format(params=params, need=need / 1e9, have=memory_bytes / 1e9)
    return [_error(("agent_params", "hidden"), message)]


def _error(loc: tuple, message: str) -> dict[str, Any]:
    return {"type": PydanticCustomError("value_error", message), "loc": loc, "input": None}


