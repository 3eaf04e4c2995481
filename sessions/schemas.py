import datetime
from typing import Literal

from ninja import Field, Schema

from common.access import sees_everything
from common.ids import MAX_ID
from common.schemas import InputSchema
from sessions.models import PerformanceMetric, SessionStatus, StrategySession
from sessions.reasons import failure_reason
from sessions.selectors import METRIC_PAGE_MAX
from sessions.services import PRIORITY_RANGE

Status = Literal[tuple(SessionStatus.values)]


class SessionIn(InputSchema):
    session_type: Literal["training", "backtest"] = "training"
    priority: int = Field(
        0, ge=PRIORITY_RANGE[0], le=PRIORITY_RANGE[1],
        description="Higher runs first when workers are busy; equal priorities run in the order queued",
    )
    source: int | None = Field(
        None, ge=1, le=MAX_ID, description="backtest only: the completed training session whose best checkpoint it runs"
    )


class SessionOut(Schema):
    id: int
    strategy: int
    strategy_name: str
    owner: str
    session_type: str
    status: Status
    priority: int
    source: int | None = Field(description="The training session a backtest runs the checkpoint of")
    progress_epoch: int
    progress_total: int = Field(description="0 while unknown")
    attempt: int = Field(description="1 on the first run; each retry after a failure or a lost worker adds one")
    device: str
    pause_requested: bool
    cancel_requested: bool
    error: str = Field(description="Why the session reached its status, in one sentence, if it says (staff: the "
                                   "whole error, a traceback when it failed)")
    has_report: bool
    task_id: str
    created_at: datetime.datetime
    started_at: datetime.datetime | None
    completed_at: datetime.datetime | None
    heartbeat_at: datetime.datetime | None

    @staticmethod
    def resolve_strategy(session: StrategySession) -> int:
        return session.strategy_id

    @staticmethod
    def resolve_strategy_name(session: StrategySession) -> str:
        return session.strategy.name

    @staticmethod
    def resolve_owner(session: StrategySession) -> str:
        return session.strategy.owner.get_username()

    @staticmethod
    def resolve_source(session: StrategySession) -> int | None:
        return session.source_id

    @staticmethod
    def resolve_has_report(session: StrategySession) -> bool:
        return session.has_report

    @staticmethod
    def resolve_error(session: StrategySession, context) -> str:
        # Tracebacks and server paths are for the operators (common.access), not for every user.
        if not session.error or sees_everything(context["request"].auth):
            return session.error
        return failure_reason(session.error)


class MetricOut(Schema):
    id: int
    metric_type: str = Field(description='Namespaced: "train/loss", "eval/sharpe", "time/epoch_seconds", ...')
    value: float | None = Field(description="null for NaN and infinities")
    epoch: int
    timestamp: datetime.datetime

    @staticmethod
    def resolve_id(metric: PerformanceMetric) -> int:
        return metric.pk


class MetricPageOut(Schema):
    items: list[MetricOut]
    next: int = Field(description="The `after` of the next request: the last id returned (or the `after` given)")
    has_more: bool = Field(description=f"Whether more rows were there already (pages hold at most {METRIC_PAGE_MAX})")

