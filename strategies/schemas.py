import datetime
from typing import Any, Literal

from ninja import Field, Schema

from engine.config import TASKS
from strategies.config import PRESETS, SECTIONS
from strategies.models import Strategy

Preset = Literal[tuple(PRESETS)]

PARAMS_HELP = (
    f"Config sections ({', '.join(SECTIONS)}), each a dict of the values you set; the preset and the "
    "engine's defaults fill the rest. GET /api/config/schema lists the fields."
)


class StrategyIn(Schema):
    name: str
    description: str = ""
    task: str = Field(description=f"{', '.join(TASKS[:-1])} or {TASKS[-1]}")
    agent: str = Field(description="An engine agent that does the task, e.g. ppo, dqn, eiie")
    dataset: int = Field(description="Dataset id (GET /api/datasets)")
    preset: Preset = Field("default", description="quick: a first look; default; thorough: more epochs and steps")
    params: dict[str, Any] = Field(default_factory=dict, description=PARAMS_HELP)


class StrategyPatch(Schema):
    """Fields left out (or null) stay as they are. params merge over the stored config; a new task or
    agent, or a preset, starts the config over from the defaults."""

    name: str | None = None
    description: str | None = None
    task: str | None = None
    agent: str | None = None
    dataset: int | None = Field(None, description="Dataset id (GET /api/datasets)")
    preset: Preset | None = None
    params: dict[str, Any] | None = Field(None, description=PARAMS_HELP)


class StrategyOut(Schema):
    id: int
    name: str
    description: str
    owner: str
    task: str
    agent: str
    dataset: int
    dataset_name: str
    config: dict[str, Any] = Field(description="The validated engine config, every default resolved")
    created_at: datetime.datetime
    updated_at: datetime.datetime

    @staticmethod
    def resolve_owner(strategy: Strategy) -> str:
        return strategy.owner.get_username()

    @staticmethod
    def resolve_dataset(strategy: Strategy) -> int:
        return strategy.dataset_id

    @staticmethod
    def resolve_dataset_name(strategy: Strategy) -> str:
        return strategy.dataset.name


class DatasetOut(Schema):
    id: int
    name: str
    frequency: str
    periods_per_year: float
    tickers: list[str]
    start_date: datetime.date
    end_date: datetime.date
    n_bars: int
    checksum: str = Field(description="sha256 of the file (of the file listing, for a folder)")
    created_at: datetime.datetime


class DatasetImportIn(Schema):
    path: str = Field(description="A CSV file or a folder of CSV files, on the server's file system")
    name: str = Field(description="The dataset's name, unique")


class ConfigSchemaOut(Schema):
    task: str
    agent: str
    sections: dict[str, Any] = Field(description="JSON schema per section (env, agent_params, trainer, split)")
    presets: dict[str, Any] = Field(description="What each preset sets, per section")
