"""The risk API's bodies and answers: limits (risk.limits.Limits, field for field), their change history,
kill switches and risk decisions.

Every number is bounded and finite, every string and list has a length: what the document allows, a
limit can hold and a column can store. Whether limits stay within the system-wide ceiling is the
services' question (risk.services.limits_set: 422 naming each field).
"""
from __future__ import annotations

import datetime
from typing import Annotated, Any, Literal

from ninja import Field, Schema
from pydantic import StringConstraints, field_validator
from pydantic_core import PydanticCustomError

from common.ids import MAX_ID
from common.schemas import InputSchema
from risk.limits import ALL_WEEKDAYS, BREACH_LEVELS, POSITIVE_FIELDS, Limits, TradingHours
from risk.models import KillLevelName, KillSwitch, RiskDecision, Scope

# Money, units and multiples above this are no limit anyone means (and would print as 1e+15).
MAX_AMOUNT = 1e15
MAX_COUNT = 1_000_000
MAX_SYMBOLS = 500
SYMBOL_LENGTH = RiskDecision._meta.get_field("symbol").max_length
REASON_LENGTH = 500
HHMM = r"^([01][0-9]|2[0-4]):[0-5][0-9]$"

BreachLevel = Literal[BREACH_LEVELS]
KillLevel = Literal[tuple(KillLevelName.values)]
SwitchScope = Literal[tuple(KillSwitch.SwitchScope.values)]
LimitScope = Literal[tuple(Scope.values)]
Symbol = Annotated[str, StringConstraints(min_length=1, max_length=SYMBOL_LENGTH)]


def _amount(description: str, upper: float | None = None):
    # Strict: the document says a number, so "5" and true are refused, not read as 5 and 1.
    return Field(None, gt=0, le=upper or MAX_AMOUNT, allow_inf_nan=False, strict=True, description=description)


def _count(description: str):
    return Field(None, ge=1, le=MAX_COUNT, strict=True, description=description)


class TradingHoursIn(InputSchema):
    start: str = Field("00:00", pattern=HHMM, max_length=5, description="HH:MM, UTC")
    end: str = Field("24:00", pattern=HHMM, max_length=5, description="HH:MM, UTC; after start, 24:00 at most")
    weekdays: list[Annotated[int, Field(ge=0, le=6, strict=True)]] = Field(
        sorted(ALL_WEEKDAYS), max_length=7, description="0 (Monday) to 6 (Sunday)")


class LimitsIn(InputSchema):
    """A scope's limits, replacing the ones it had: a field left out or null is not set (breach_level:
    halt). Money in the account's currency; *_pct in percent; fractions and exposure as multiples of
    equity."""

    max_order_notional: float | None = _amount("An order's quantity times its expected price")
    max_position_fraction: float | None = _amount("A position's value as a multiple of equity (0.2: a fifth)")
    max_position_units: float | None = _amount("A position's absolute size, in units")
    max_gross_exposure: float | None = _amount("All positions' absolute value as a multiple of equity")
    daily_loss_money: float | None = _amount("How far equity may fall below the day's start")
    daily_loss_pct: float | None = _amount("The same in percent", POSITIVE_FIELDS["daily_loss_pct"])
    max_drawdown_money: float | None = _amount("How far equity may fall below its peak")
    max_drawdown_pct: float | None = _amount("The same in percent", POSITIVE_FIELDS["max_drawdown_pct"])
    max_orders_per_minute: int | None = _count("Orders sent in any 60 seconds")
    max_open_orders: int | None = _count("Orders open at once")
    price_band_pct: float | None = _amount("How far an order's price may stray from the last trade, in percent")
    allowed_symbols: list[Symbol] | None = Field(None, max_length=MAX_SYMBOLS,
                                                 description="The only symbols that may be traded")
    trading_hours: TradingHoursIn | None = Field(None, description="When orders may be sent (UTC)")
    breach_level: BreachLevel | None = Field(None, description="The kill level a breached loss limit trips; "
                                                               "null: halt")

    @field_validator("trading_hours")
    @classmethod
    def _a_window(cls, hours: TradingHoursIn | None) -> TradingHoursIn | None:
        # Each bound may be a time and the two still no window (start after end, 24:30).
        if hours is not None:
            try:
                TradingHours(hours.start, hours.end, frozenset(hours.weekdays))
            except ValueError as error:
                raise PydanticCustomError("trading_hours", str(error).replace("{", "(").replace("}", ")")) from None
        return hours

    def limits(self) -> dict:
        """As Limits.from_dict reads them."""
        values = self.dict(exclude_none=True)
        return {**values, "breach_level": self.breach_level or Limits.breach_level}


class TradingHoursOut(Schema):
    start: str
    end: str
    weekdays: list[int]


class LimitsOut(Schema):
    """Limits as stored: null is a limit not set."""

    max_order_notional: float | None
    max_position_fraction: float | None
    max_position_units: float | None
    max_gross_exposure: float | None
    daily_loss_money: float | None
    daily_loss_pct: float | None
    max_drawdown_money: float | None
    max_drawdown_pct: float | None
    max_orders_per_minute: int | None
    max_open_orders: int | None
    price_band_pct: float | None
    allowed_symbols: list[str] | None
    trading_hours: TradingHoursOut | None
    breach_level: BreachLevel


class LimitChangeOut(Schema):
    id: int
    changed_by: str | None
    changed_at: datetime.datetime
    before: dict[str, Any] = Field(description="The limits before (empty: none were set)")
    after: dict[str, Any]


class LimitsRecordOut(Schema):
    """One scope's limits and who last set them; never set: every limit null, updated_* null."""

    scope: LimitScope
    limits: LimitsOut
    updated_by: str | None
    updated_at: datetime.datetime | None
    changes: list[LimitChangeOut] = Field(description="The latest changes, newest first")


class DeploymentLimitsOut(LimitsRecordOut):
    effective: LimitsOut = Field(description="What the deployment is held to: the tightest of the system-wide "
                                             "ceiling, its owner's, its strategy's and its own limits")


class KillSwitchIn(InputSchema):
    scope: SwitchScope = Field(description="global (superusers), user (all your deployments) or deployment")
    level: KillLevel = Field(description="pause: no new orders; halt: open orders cancelled, only reducing "
                                         "orders; flatten: every position closed")
    deployment: int | None = Field(None, ge=1, le=MAX_ID, description="The deployment's id; for scope deployment "
                                                                      "only")
    reason: str = Field("", max_length=REASON_LENGTH, description='Empty: "tripped at <level>"')


class KillSwitchLiftIn(InputSchema):
    scope: SwitchScope
    deployment: int | None = Field(None, ge=1, le=MAX_ID, description="For scope deployment only")


class KillSwitchOut(Schema):
    id: int
    scope: SwitchScope
    level: KillLevel
    reason: str
    automatic: bool = Field(description="Tripped by a loss limit, not by a person")
    user: str | None = Field(description="Whose deployments it stops (scope user)")
    deployment: int | None = Field(description="The deployment it stops (scope deployment)")
    tripped_by: str | None
    tripped_at: datetime.datetime
    lifted_by: str | None
    lifted_at: datetime.datetime | None = Field(description="null while latched")

    @staticmethod
    def resolve_user(switch: KillSwitch) -> str | None:
        return switch.user.get_username() if switch.user_id else None

    @staticmethod
    def resolve_deployment(switch: KillSwitch) -> int | None:
        return switch.deployment_id

    @staticmethod
    def resolve_tripped_by(switch: KillSwitch) -> str | None:
        return switch.tripped_by.get_username() if switch.tripped_by_id else None

    @staticmethod
    def resolve_lifted_by(switch: KillSwitch) -> str | None:
        return switch.lifted_by.get_username() if switch.lifted_by_id else None


class RiskDecisionOut(Schema):
    id: int
    client_order_id: str
    bar_index: int = Field(description="The bar the order was decided at")
    symbol: str
    side: str
    quantity: float
    approved: bool
    code: str = Field(description="Why it was refused (risk.controller's reason codes); empty when approved")
    message: str
    values: dict[str, Any] = Field(description='The limit and the value that broke it: {"limit", "value"}')
    created_at: datetime.datetime


class RiskDecisionPageOut(Schema):
    items: list[RiskDecisionOut]
    next_after: int = Field(description="The `after` of the next request: the last id returned (or the `after` "
                                         "given)")
