"""One typed configuration for a run: the single schema the platform stores, validates and builds its
forms from.

`{"task": "portfolio_management", "dataset": "synthetic", "agent": "ppo"}` is a complete config: every
other field gets the defaults of its (task, agent) pair. The env and agent sections are validated by
the env's and the agent's own parameter dataclasses (engine.envs.PARAMS, Agent.Params), so there is
exactly one definition of each parameter, with its range and description. Errors are pydantic
ValidationErrors whose `loc` is the field path (("env", "window"), ("agent",), ...).

A validated config dumps every resolved default (`model_dump(mode="json")`), so what is stored is
what ran, and it validates back to an equal config.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from engine.tasks import TASKS

Task = Literal[TASKS]

AGENT_NOT_FOR_TASK = "agent {agent!r} does not support task {task!r}; agents for this task: {choices}"
UNKNOWN_AGENT = "unknown agent {agent!r}; known agents: {choices}"
WINDOW_TOO_LONG = "window {window} is longer than the {split} split ({bars} bars)"
NOT_FINITE = "must be a finite number"


class SplitConfig(BaseModel):
    """Train/valid/test by date ranges (inclusive), or by ratios of the bars in time order."""

    model_config = ConfigDict(extra="forbid")

    train: tuple[dt.date, dt.date] | None = Field(None, description="First and last date of the train split")
    valid: tuple[dt.date, dt.date] | None = Field(None, description="First and last date of the valid split")
    test: tuple[dt.date, dt.date] | None = Field(None, description="First and last date of the test split")
    ratios: tuple[float, float, float] = Field(
        (0.7, 0.15, 0.15), description="Shares of the bars for train, valid, test when no dates are given"
    )

    @field_validator("ratios")
    @classmethod
    def _finite(cls, ratios: tuple[float, float, float]) -> tuple[float, float, float]:
        if not all(math.isfinite(r) for r in ratios):
            raise PydanticCustomError("finite_number", NOT_FINITE)
        return ratios

    @model_validator(mode="after")
    def _consistent(self) -> "SplitConfig":
        given = [r is not None for r in (self.train, self.valid, self.test)]
        if any(given) and not all(given):
            raise ValueError("give the train, valid and test date ranges together, or none of them")
        if any(r <= 0 for r in self.ratios) or abs(sum(self.ratios) - 1.0) > 1e-9:
            raise ValueError(f"ratios must be positive and sum to 1, got {list(self.ratios)}")
        if all(given):
            ranges = {"train": self.train, "valid": self.valid, "test": self.test}
            for name, (start, end) in ranges.items():
                if start > end:
                    raise ValueError(f"{name} range starts after it ends ({start} > {end})")
            ordered = sorted(ranges.items(), key=lambda kv: kv[1][0])
            for (a, (_, a_end)), (b, (b_start, _)) in zip(ordered, ordered[1:]):
                if b_start <= a_end:
                    raise ValueError(f"the {a} and {b} ranges overlap")
        return self

    def as_kwargs(self) -> dict:
        """Arguments for engine.data.split_market."""
        if self.train is None:
            return {"ratios": self.ratios}
        return {"train": self.train, "valid": self.valid, "test": self.test}


class TrainerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    epochs: int = Field(10, ge=1, le=100_000, description="Training epochs; each ends with an evaluation on valid")
    steps_per_epoch: int = Field(
        32_768, ge=1, le=1_000_000_000, description="Env-steps collected per epoch, summed over the parallel envs"
    )
    num_envs: int = Field(64, ge=1, le=65_536, description="Parallel environment copies stepped as one batch")
    seed: int = Field(0, ge=0, le=2**31 - 1, description="Seed of every random draw; same seed, same run")
    device: str = Field(
        "auto", pattern=r"^(auto|cpu|cuda(:\d+)?|mps)$", description='"auto" picks CUDA when present, else the CPU'
    )
    # Higher is better for each (max_drawdown is <= 0): the trainer keeps the epoch with the maximum.
    best_by: Literal["sharpe", "total_return", "annual_return", "sortino", "calmar", "max_drawdown", "reward"] = Field(
        "sharpe", description="Valid-split metric that picks the best checkpoint"
    )


# Per-(task, agent) defaults, deep-merged under what the user gives. Only what differs from the
# dataclass defaults is listed here.
_TRAINING_EPISODE = {"episode_length": 256}
DEFAULTS: dict[tuple[str, str], dict[str, Any]] = {
    ("portfolio_management", "ppo"): {"env": _TRAINING_EPISODE},
    ("portfolio_management", "a2c"): {"env": _TRAINING_EPISODE},
    ("portfolio_management", "sac"): {"env": _TRAINING_EPISODE, "trainer": {"num_envs": 16, "steps_per_epoch": 4096}},
    ("portfolio_management", "eiie"): {"env": _TRAINING_EPISODE},
    ("algorithmic_trading", "ppo"): {"env": _TRAINING_EPISODE},
    ("algorithmic_trading", "a2c"): {"env": _TRAINING_EPISODE},
    ("algorithmic_trading", "dqn"): {"env": _TRAINING_EPISODE, "trainer": {"num_envs": 16, "steps_per_epoch": 8192}},
    ("order_execution", "ppo"): {"env": {"random_start": True}, "trainer": {"best_by": "reward"}},
    ("order_execution", "a2c"): {"env": {"random_start": True}, "trainer": {"best_by": "reward"}},
    ("order_execution", "sac"): {
        "env": {"random_start": True},
        "trainer": {"best_by": "reward", "num_envs": 16, "steps_per_epoch": 4096},
    },
    ("order_execution", "twap"): {"trainer": {"best_by": "reward"}},
    ("order_execution", "random"): {"trainer": {"best_by": "reward"}},
}


def deep_merge(base: Mapping, override: Mapping) -> dict:
    """`override` on top of `base`, dict by dict; other values (lists included) are replaced whole."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _validate_section(cls: type, values: dict) -> dict:
    """`values` validated by a parameter dataclass, as a dict with every default filled in.

    Raised from a field validator, the errors' locs get the field's name in front (("env", "window")).
    """
    known = {f.name for f in dataclasses.fields(cls)}
    errors = [{"type": "extra_forbidden", "loc": (key,), "input": values[key]} for key in values if key not in known]
    # NaN compares false with every bound, so the dataclass would call it "not <= 1"; say what it is.
    non_finite = list(_non_finite(values))
    errors += [_finite_error(loc, value) for loc, value in non_finite]
    params = None
    try:
        params = TypeAdapter(cls).validate_python(values)
    except ValidationError as exc:
        errors += [
            {"type": e["type"], "loc": e["loc"], "input": e["input"], "ctx": e.get("ctx", {})}
            for e in exc.errors()
            # Unknown names are reported above, the same way whether or not the dataclass forbids extras.
            if e["type"] not in ("extra_forbidden", "unexpected_keyword_argument")
            and not any(tuple(e["loc"][:len(loc)]) == loc for loc, _ in non_finite)
        ]
    if params is not None and not errors:
        # "inf" as text becomes a float only now.
        errors += [_finite_error(loc, value) for loc, value in _non_finite(dataclasses.asdict(params))]
    if errors:
        raise ValidationError.from_exception_data("RunConfig", errors)
    return dataclasses.asdict(params)


def _non_finite(value: Any, loc: tuple = ()):
    """(path, value) of every NaN or infinity inside `value` (dicts, lists, numbers)."""
    if isinstance(value, float) and not math.isfinite(value):
        yield loc, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _non_finite(item, (*loc, key))
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _non_finite(item, (*loc, index))


def _finite_error(loc: tuple, value: float) -> dict:
    return {"type": PydanticCustomError("finite_number", NOT_FINITE), "loc": loc, "input": value}


def config_error(loc: tuple, message: str, value: Any) -> ValidationError:
    """A ValidationError at field path `loc`, shaped like pydantic's own."""
    return ValidationError.from_exception_data(
        "RunConfig", [{"type": PydanticCustomError("value_error", message), "loc": loc, "input": value}]
    )


class RunConfig(BaseModel):
    """Everything a training run or backtest needs, and nothing about where it runs."""

    model_config = ConfigDict(extra="forbid")

    task: Task = Field(description=f"What the agent does: {', '.join(TASKS[:-1])} or {TASKS[-1]}")
    dataset: str = Field(min_length=1, max_length=200, description="Dataset name (a file path, or 'synthetic')")
    agent: str = Field(min_length=1, description="Agent: ppo, a2c, dqn, sac, eiie, or a baseline")
    split: SplitConfig = Field(default_factory=SplitConfig)
    # validate_default: an absent section is filled with its dataclass's defaults by the validators below.
    env: dict[str, Any] = Field(default_factory=dict, validate_default=True,
                                description="Environment parameters of the task")
    agent_params: dict[str, Any] = Field(default_factory=dict, validate_default=True,
                                         description="Hyperparameters of the agent")
    trainer: TrainerConfig = Field(default_factory=TrainerConfig)

    @model_validator(mode="before")
    @classmethod
    def _fill_pair_defaults(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("task"), str) and isinstance(data.get("agent"), str):
            defaults = DEFAULTS.get((data["task"], data["agent"]))
            if defaults:
                data = deep_merge(defaults, data)
        return data

    # Field validators rather than one model validator: each section is checked even when another
    # field is invalid, so a form gets every error in one round. Fields validate in declaration order,
    # so `info.data` holds task and agent when they are valid (and lacks them when they are not, which
    # has been reported on their own field).
    @field_validator("agent")
    @classmethod
    def _known_agent_for_task(cls, agent: str, info: ValidationInfo) -> str:
        from engine.agents import AGENTS

        agent_cls = AGENTS.get(agent)
        if agent_cls is None:
            raise PydanticCustomError("unknown_agent", UNKNOWN_AGENT.format(agent=agent, choices=", ".join(AGENTS)))
        task = info.data.get("task")
        if task is not None and task not in agent_cls.tasks:
            choices = ", ".join(name for name, c in AGENTS.items() if task in c.tasks)
            raise PydanticCustomError("agent_not_for_task",
                                      AGENT_NOT_FOR_TASK.format(agent=agent, task=task, choices=choices))
        return agent

    @field_validator("env")
    @classmethod
    def _env_of_task(cls, env: dict, info: ValidationInfo) -> dict:
        from engine.envs import PARAMS

        task = info.data.get("task")
        return env if task is None else _validate_section(PARAMS[task], env)

    @field_validator("agent_params")
    @classmethod
    def _params_of_agent(cls, params: dict, info: ValidationInfo) -> dict:
        from engine.agents import AGENTS

        agent = info.data.get("agent")
        return params if agent is None else _validate_section(AGENTS[agent].Params, params)

    def env_params(self):
        from engine.envs import PARAMS

        return PARAMS[self.task](**self.env)

    def agent_params_obj(self):
        from engine.agents import AGENTS

        return AGENTS[self.agent].Params(**self.agent_params)


def check_fits(config: RunConfig, split_lengths: dict[str, int]) -> None:
    """Refuse a config whose window does not fit a split (needs the data, so not part of validation)."""
    window = config.env.get("window", 1)
    for split, bars in split_lengths.items():
        if window > bars:
            raise config_error(("env", "window"), WINDOW_TOO_LONG.format(window=window, split=split, bars=bars), window)


def schema(task: str, agent: str) -> dict:
    """JSON schema of the env and agent sections of one (task, agent) pair, with that pair's
    defaults filled in: what the platform builds its form from."""
    from engine.agents import AGENTS
    from engine.envs import PARAMS

    defaults = RunConfig(task=task, dataset="-", agent=agent)
    out = {"trainer": TrainerConfig.model_json_schema(), "split": SplitConfig.model_json_schema()}
    for section, cls, values in (
        ("env", PARAMS[task], defaults.env),
        ("agent_params", AGENTS[agent].Params, defaults.agent_params),
    ):
        sch = TypeAdapter(cls).json_schema()
        for name, prop in sch.get("properties", {}).items():
            if name in values:
                prop["default"] = values[name]
        out[section] = sch
    for name, prop in out["trainer"].get("properties", {}).items():
        prop["default"] = getattr(defaults.trainer, name)
    return out
