import datetime
from typing import Any, Literal

from ninja import Field, Schema

from common.ids import MAX_ID
from common.schemas import InputSchema
from engine.agents import AGENTS
from engine.config import TASKS
from strategies.config import PRESETS, SECTIONS, config_public
from strategies.models import Strategy

Preset = Literal[tuple(PRESETS)]
# The document lists the values there are; whether an agent does a task the engine says (422).
TaskName = Literal[TASKS]
AgentName = Literal[tuple(AGENTS)]
NAME_LENGTH = Strategy._meta.get_field("name").max_length

PARAMS_HELP = (
    f"Config sections ({', '.join(SECTIONS)}), each a dict of the values you set; the preset and the "
    "engine's defaults fill the rest. GET /api/config/schema lists the fields."
)


class StrategyIn(InputSchema):
    name: str = Field(min_length=1, max_length=NAME_LENGTH)
    description: str = ""
    task: TaskName = Field(description="What the agent does")
    agent: AgentName = Field(description="An engine agent that does the task (GET /api/config/schema)")
    dataset: int = Field(ge=1, le=MAX_ID, description="Dataset id (GET /api/datasets)")
    preset: Preset = Field("default", description="quick: a first look; default; thorough: more epochs and steps")
    params: dict[str, Any] = Field(default_factory=dict, description=PARAMS_HELP)


class StrategyPatch(InputSchema):
    """Fields left out (or null) stay as they are. params merge over the stored config; a new task or
    agent, or a preset, starts the config over from the defaults."""

    name: str | None = Field(None, min_length=1, max_length=NAME_LENGTH)
    description: str | None = None
    task: TaskName | None = None
    agent: AgentName | None = None
    dataset: int | None = Field(None, ge=1, le=MAX_ID, description="Dataset id (GET /api/datasets)")
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

    @staticmethod
    def resolve_config(strategy: Strategy) -> dict[str, Any]:
        return config_public(strategy.config, dataset_name=strategy.dataset.name)


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


class DatasetImportIn(InputSchema):
    path: str = Field(description="A CSV file or a folder of CSV files inside the server's import folder "
                                  "(TRADEMASTER_IMPORT_DIR), relative to it")
    name: str = Field(min_length=1, max_length=100, description="The dataset's name, unique")


class ConfigSchemaOut(Schema):
    task: str
    agent: str
    sections: dict[str, Any] = Field(description="JSON schema per section (env, agent_params, trainer, split)")
    presets: dict[str, Any] = Field(description="What each preset sets, per section")
