import datetime
from typing import Annotated, Any, Literal

import ccxt
from ninja import Field, Schema
from pydantic import StringConstraints, field_validator
from pydantic_core import PydanticCustomError

from common.access import may_act, sees_everything
from common.ids import MAX_ID
from common.schemas import InputSchema
from sessions.reasons import failure_reason, without_paths
from trading.models import Deployment, DeploymentEvent, DeploymentStatus, ExchangeAccount, Fill, Order, Position

Status = Literal[tuple(DeploymentStatus.values)]
Mode = Literal[tuple(Deployment.Mode.values)]
FeedKind = Literal[tuple(Deployment.FeedKind.values)]
FillModel = Literal[tuple(Deployment.FillModel.values)]
# The exchanges ccxt speaks to, by its ids: what an exchange account may name.
EXCHANGES = tuple(ccxt.exchanges)
UNKNOWN_EXCHANGE = "not an exchange ccxt knows; use a ccxt exchange id such as binance, kraken or coinbase"
# A ccxt timeframe: an amount and a unit (ccxt's parse_timeframe), e.g. 1m, 15m, 4h, 1d.
TIMEFRAME = r"^[1-9][0-9]{0,5}[smhdwMy]$"
MAX_BARS_PER_SECOND = 1e6
MAX_SLIPPAGE_BPS = 1e4
MAX_SYMBOLS = 500
KEY_LENGTH = 1000


def _field_length(model, name: str) -> int:
    return model._meta.get_field(name).max_length


Symbol = Annotated[str, StringConstraints(min_length=1, max_length=_field_length(Order, "symbol"))]


class DeploymentIn(InputSchema):
    session: int = Field(ge=1, le=MAX_ID, description="The completed training session whose best checkpoint trades")
    mode: Mode = Field("paper", description="paper: a simulated broker; live: orders at the account's exchange")
    feed: FeedKind = Field("replay", description="replay: the dataset's test period (paper only); live: the "
                                                 "exchange's bars (needs `account`)")
    account: str | None = Field(None, min_length=1, max_length=_field_length(ExchangeAccount, "name"),
                                description="The name of one of your exchange accounts (GET /api/exchange-accounts)")
    fill_model: FillModel = Field("close", description="close: at the decision bar's close, as the backtest; "
                                                       "next_open: at the next bar's open")
    bars_per_second: float | None = Field(None, gt=0, le=MAX_BARS_PER_SECOND, allow_inf_nan=False,
                                          description="Replay speed; null: as fast as possible")
    slippage_bps: float = Field(0.0, ge=0, lt=MAX_SLIPPAGE_BPS, allow_inf_nan=False)
    volume_cap: float | None = Field(None, gt=0, le=1, allow_inf_nan=False,
                                     description="Largest fraction of a bar's volume one fill takes; null: no cap")
    timeframe: str = Field("1m", pattern=TIMEFRAME, max_length=_field_length(Deployment, "timeframe"),
                           description="Live feed bar length (a ccxt timeframe: 1m, 1h, 1d, ...)")
    name: str = Field("", max_length=_field_length(Deployment, "name"),
                      description='Empty: "<strategy name> #<session id>"')
    symbols: list[Symbol] | None = Field(
        None, max_length=MAX_SYMBOLS,
        description="Live feed only: the exchange's symbols (ccxt's, e.g. BTC/USDT), one per asset the strategy "
                    "was trained on, in the dataset's order; null: the dataset's tickers")


class DeploymentOut(Schema):
    id: int
    name: str
    owner: str
    mode: Mode
    is_live: bool
    feed: FeedKind
    account: str | None = Field(description="The exchange account's name")
    status: Status
    error: str = Field(description="Why the deployment reached its status, if it says")
    strategy: int
    strategy_name: str
    session: int | None = Field(description="The training session it deploys (null once that is deleted)")
    symbols: list[str]
    dataset_name: str
    checkpoint_sha256: str
    fill_model: FillModel
    fee_rate: float
    slippage_bps: float
    volume_cap: float | None
    initial_cash: float
    cash: float | None
    equity: float | None
    pnl: float | None = Field(description="equity - initial_cash")
    pnl_today: float | None = Field(description="equity - the equity the trading day started with")
    drawdown: float | None = Field(description="Fraction <= 0 of the equity below its peak")
    peak_equity: float | None
    last_bar: int | None = Field(description="Index of the last bar handled")
    last_bar_time: str
    bars_done: int
    replay_start: int | None = Field(description="First bar of a replay")
    replay_stop: int | None = Field(description="End (exclusive) of a replay")
    bars_per_second: float | None
    timeframe: str
    heartbeat_at: datetime.datetime | None
    created_at: datetime.datetime
    started_at: datetime.datetime | None
    stopped_at: datetime.datetime | None

    @staticmethod
    def resolve_owner(deployment: Deployment) -> str:
        return deployment.owner.get_username()

    @staticmethod
    def resolve_account(deployment: Deployment) -> str | None:
        return deployment.account.name if deployment.account_id else None

    @staticmethod
    def resolve_strategy(deployment: Deployment) -> int:
        return deployment.strategy_id

    @staticmethod
    def resolve_strategy_name(deployment: Deployment) -> str:
        return deployment.strategy.name

    @staticmethod
    def resolve_session(deployment: Deployment) -> int | None:
        return deployment.session_id

    @staticmethod
    def resolve_error(deployment: Deployment, context) -> str:
        # Server paths and exception text are for the operators, as a session's error is.
        if not deployment.error or sees_everything(context["request"].auth):
            return deployment.error
        return failure_reason(deployment.error)


class DeploymentDetailOut(DeploymentOut):
    config: dict[str, Any] | None = Field(description="The run config it trades; null unless you may act on it "
                                                      "(its owner, a superuser)")

    @staticmethod
    def resolve_config(deployment: Deployment, context) -> dict[str, Any] | None:
        return deployment.config if may_act(user=context["request"].auth, owner_id=deployment.owner_id) else None


class OrderOut(Schema):
    id: int
    client_order_id: str
    bar_index: int = Field(description="The bar it was decided at")
    bar_time: str
    symbol: str
    side: str
    quantity: float
    order_type: str
    limit_price: float | None
    time_in_force: str
    status: str
    filled_quantity: float
    average_price: float | None
    fees: float
    broker_order_id: str
    reason: str
    refused_by_risk: bool = Field(description="Refused by the risk check; never sent")
    created_at: datetime.datetime
    updated_at: datetime.datetime


class FillOut(Schema):
    id: int
    order: int
    fill_id: str = Field(description="The broker's id of the execution")
    symbol: str
    side: str
    quantity: float
    price: float
    fee: float
    time: str = Field(description="The bar's (paper) or the venue's (live) time")
    recorded_at: datetime.datetime

    @staticmethod
    def resolve_order(fill: Fill) -> int:
        return fill.order_id


class EquityPointOut(Schema):
    id: int
    bar_index: int
    time: str
    equity: float = Field(description="The account marked at the bar's close, before that bar's orders")
    cash: float
    benchmark: float | None = Field(description="Equal amounts of every symbol held from the first bar, at no cost")


class EventOut(Schema):
    id: int
    severity: Literal[tuple(DeploymentEvent.Severity.values)]
    message: str
    created_at: datetime.datetime

    @staticmethod
    def resolve_message(event: DeploymentEvent, context) -> str:
        if sees_everything(context["request"].auth):
            return event.message
        return without_paths(event.message)


NEXT_AFTER = "The `after` of the next request: the last id returned (or the `after` given)"


class OrderPageOut(Schema):
    items: list[OrderOut]
    next_after: int = Field(description=NEXT_AFTER)


class FillPageOut(Schema):
    items: list[FillOut]
    next_after: int = Field(description=NEXT_AFTER)


class EquityPageOut(Schema):
    items: list[EquityPointOut]
    next_after: int = Field(description=NEXT_AFTER)


class EventPageOut(Schema):
    items: list[EventOut]
    next_after: int = Field(description=NEXT_AFTER)


class PositionOut(Schema):
    symbol: str
    quantity: float = Field(description="Units held (negative: short)")
    last_price: float | None
    value: float | None = Field(description="quantity * last_price; null before a price is known")

    @staticmethod
    def resolve_value(position: Position) -> float | None:
        return None if position.last_price is None else position.quantity * position.last_price


class ExchangeAccountIn(InputSchema):
    name: str = Field(min_length=1, max_length=_field_length(ExchangeAccount, "name"))
    exchange: str = Field(max_length=_field_length(ExchangeAccount, "exchange"), json_schema_extra={"enum": EXCHANGES},
                          description="A ccxt exchange id")
    api_key: str = Field(min_length=1, max_length=KEY_LENGTH, description="Sealed at rest; never shown again")
    secret: str = Field(min_length=1, max_length=KEY_LENGTH, description="Sealed at rest; never shown again")
    base_url: str = Field("", max_length=_field_length(ExchangeAccount, "base_url"),
                          description="The API's address when not the exchange's own (a testnet); empty: its own")
    quote: str = Field("USDT", min_length=1, max_length=_field_length(ExchangeAccount, "quote"),
                       description="The currency the account is valued in")

    @field_validator("exchange")
    @classmethod
    def _known_exchange(cls, value: str) -> str:
        # Not a Literal: its error would list every one of ccxt's 100+ ids.
        if value not in EXCHANGES:
            raise PydanticCustomError("unknown_exchange", UNKNOWN_EXCHANGE)
        return value


class ExchangeAccountOut(Schema):
    """What tells an account apart; never its keys."""

    name: str
    exchange: str
    base_url: str
    quote: str
    key_hint: str = Field(description="The API key's last four characters (empty for a key under 12 characters)")
    created_at: datetime.datetime
