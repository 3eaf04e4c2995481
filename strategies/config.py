"""Turn what a form or an API client sends into the engine's RunConfig.

The engine owns the schema (engine.config.RunConfig, engine.config.schema); this module only decides
which values go in: a preset's, under the user's. Nothing here defines a parameter of its own.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import psutil
from pydantic import ValidationError
from pydantic_core import PydanticCustomError

from common.text import unstorable
from engine.config import DEFAULTS, RunConfig, TrainerConfig, config_error, deep_merge, schema
from engine.data import DataError, MarketData
from engine.data.catalog import load_dataset
from engine.preflight import preflight

if TYPE_CHECKING:
    from strategies.models import Dataset

# The parts of a RunConfig a user sets; task, agent and dataset have their own inputs.
SECTIONS = ("env", "agent_params", "trainer", "split")
UNKNOWN_PRESET = "unknown preset {preset!r}; presets: {choices}"
NOT_A_SECTION = "not a config section; sections: " + ", ".join(SECTIONS)
DATASET_UNREADABLE = "the data of {name!r} cannot be read: {error}"
DATASET_FILE_GONE = "its file is gone from the server's data folder, or unreadable"

QUICK_EPOCHS = 2
QUICK_STEPS = 2048
QUICK_ENVS = 8
THOROUGH_EPOCHS = 50


def _pair_trainer(task: str, agent: str) -> TrainerConfig:
    """The trainer section RunConfig would fill in for (task, agent), read from the engine's own table."""
    return TrainerConfig(**DEFAULTS.get((task, agent), {}).get("trainer", {}))


def _quick(task: str, agent: str) -> dict:
    # A first look in a minute or two on a CPU: enough to see the curves move, not to judge the agent.
    trainer = _pair_trainer(task, agent)
    return {
        "trainer": {
            "epochs": QUICK_EPOCHS,
            "steps_per_epoch": min(trainer.steps_per_epoch, QUICK_STEPS),
            "num_envs": min(trainer.num_envs, QUICK_ENVS),
        }
    }


def _default(task: str, agent: str) -> dict:
    return {}


def _thorough(task: str, agent: str) -> dict:
    # Scaled from the pair's defaults, so the off-policy agents (fewer env-steps per epoch, each one
    # replayed many times) stay proportionate to the on-policy ones.
    trainer = _pair_trainer(task, agent)
    return {
        "trainer": {
            "epochs": max(THOROUGH_EPOCHS, trainer.epochs),
            "steps_per_epoch": 2 * trainer.steps_per_epoch,
        }
    }


# name -> (task, agent) -> config sections, applied under the user's values.
PRESETS: dict[str, Callable[[str, str], dict]] = {"quick": _quick, "default": _default, "thorough": _thorough}


def preset_values(*, preset: str, task: str, agent: str) -> dict:
    """The sections `preset` sets for (task, agent); {} for "default" (RunConfig's own defaults)."""
    if preset not in PRESETS:
        raise config_error(("preset",), UNKNOWN_PRESET.format(preset=preset, choices=", ".join(PRESETS)), preset)
    return PRESETS[preset](task, agent)


def config_build(
    *, task: str, agent: str, dataset: Dataset | str, params: Mapping[str, Any], preset: str = "default"
) -> RunConfig:
    """Validate a run config from form or API input; nothing is saved.

    dataset: a Dataset (the engine reads its copied file at Dataset.path) or an engine dataset name
        such as "synthetic".
    params: any of the sections "env", "agent_params", "trainer", "split", each a dict of the values
        the user chose; the preset fills what they leave out, and RunConfig the rest.

    Raises pydantic's ValidationError, one error per problem, each `loc` a field path such as
    ("env", "window"), ("agent",) or ("trainer", "epochs").
    """
    errors = [{"type": PydanticCustomError("unknown_section", NOT_A_SECTION), "loc": (key,), "input": params[key]}
              for key in params if key not in SECTIONS]
    # Text the database cannot hold; the engine itself refuses numbers that are not numbers.
    errors += [{"type": PydanticCustomError("unstorable", problem.message), "loc": problem.loc, "input": None}
               for problem in unstorable(params, numbers=False)]
    if errors:
        raise ValidationError.from_exception_data("RunConfig", errors)
    values = deep_merge(preset_values(preset=preset, task=task, agent=agent), dict(params))
    dataset_name = dataset if isinstance(dataset, str) else dataset.path
    return RunConfig.model_validate({**values, "task": task, "agent": agent, "dataset": dataset_name})


def config_check_runnable(config: RunConfig, dataset: Dataset) -> None:
    """Refuse, as a ValidationError naming each field and its limit, a valid `config` that still could
    not train on `dataset` on this machine (engine.preflight): a window longer than a split, split
    dates outside the data, a device not here, a network larger than the memory, too few assets."""
    try:
        market = _market(dataset.path, dataset.checksum, config.task)
    except (DataError, OSError) as error:
        # The problem, not the file's path on the server.
        problem = error.problem if isinstance(error, DataError) else DATASET_FILE_GONE
        raise config_error(("dataset",), DATASET_UNREADABLE.format(name=dataset.name, error=problem),
                           dataset.pk) from None
    preflight(config, market, memory_bytes=psutil.virtual_memory().total)


@lru_cache(maxsize=4)
def _market(path: str, checksum: str, task: str) -> MarketData:
    # By checksum too: a dataset's row names the bytes it was imported from. A strategy form saved
    # twice reads the file once.
    return load_dataset(path, task=task)


def config_schema(*, task: str, agent: str) -> dict:
    """What a form for (task, agent) is built from: the engine's JSON schema of each section, with the
    pair's defaults, and what each preset sets on top of them.

    Raises pydantic's ValidationError, loc ("task",) or ("agent",), for an unknown task, an unknown
    agent, or an agent that does not do the task.
    """
    # Validating a bare config first turns a bad pair into field errors rather than a KeyError.
    config_build(task=task, agent=agent, dataset="synthetic", params={})
    return {
        "task": task,
        "agent": agent,
        "sections": schema(task, agent),
        "presets": {name: preset_values(preset=name, task=task, agent=agent) for name in PRESETS},
    }


def config_public(config: Mapping[str, Any], *, dataset_name: str) -> dict:
    """A stored config as a person or an API client sees it: the dataset by its name, not the server
    path the engine reads (imported data lives in TRADEMASTER["DATA_DIR"], which is nobody's business)."""
    return {**config, "dataset": dataset_name} if "dataset" in config else dict(config)


def config_sections(config: Mapping[str, Any]) -> dict:
    """The user-settable sections of a stored config (Strategy.config), to edit and validate again."""
    return {key: config[key] for key in SECTIONS if key in config}


