"""What a trading process holds for one deployment it runs: the policy, the feed and the broker, built
from the deployment's row; and the reconciliation of its record with its broker before it trades."""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from django.utils import timezone

from engine.config import RunConfig
from engine.data.catalog import load_dataset
from engine.live.paper import PaperBroker, PaperParams
from engine.live.policy import Policy
from engine.live.replay import ReplayFeed
from engine.live.venue import Bar, Broker, Feed, Update
from trading import credentials
from trading.ledger import ledger_cash, ledger_positions, record_updates
from trading.models import Deployment
from trading.models import Order as OrderRow
from trading.services.deployments import file_sha256

CHECKSUM_MISMATCH = (
    "the checkpoint of deployment {pk} is not the one deployed (sha256 {actual}, deployed {expected}): "
    "refusing to load it"
)
CHECKPOINT_GONE = "the checkpoint of deployment {pk} is missing"
FEATURES_DIFFER = "the live feed's features ({given}) are not those the strategy was trained on ({trained})"
NEVER_SENT = "never reached the broker: the trading process stopped before sending it"
POSITION_DIFFERS = "position {symbol}: the record holds {recorded!r}, the broker {actual!r}"
CASH_DIFFERS = "cash: the record holds {recorded!r}, the broker {actual!r}"
# Relative agreement the record and the broker must reach: the same numbers, summed in the same order
# for a paper broker; a venue rounds to its own precision, far above this only for dust.
AGREEMENT = 1e-9


class DeploymentBroken(Exception):
    """The deployment cannot run as deployed (its checkpoint changed or is gone): it fails."""


@dataclass
class Runtime:
    deployment_id: int
    policy: Policy
    feed: Feed
    broker: Broker
    paper: bool
    owner_id: int = 0
    # Wall-clock times of the orders sent in the last minute (the orders-per-minute limit).
    sent: deque = field(default_factory=deque)
    # The last bar handled, whose prices a flatten between bars trades at; and how many flattens ran.
    last_bar: Bar | None = None
    flattens: int = 0

    @property
    def id_prefix(self) -> str:
        return f"d{self.deployment_id}"


def build_runtime(deployment: Deployment) -> Runtime:
    """The policy (weights-only, after checking the checkpoint's sha256), feed and broker of `deployment`,
    continuing after its last handled bar."""
    checkpoint = Path(deployment.checkpoint_path)
    if not checkpoint.is_file():
        raise DeploymentBroken(CHECKPOINT_GONE.format(pk=deployment.pk))
    actual = file_sha256(checkpoint)
    if actual != deployment.checkpoint_sha256:
        raise DeploymentBroken(CHECKSUM_MISMATCH.format(pk=deployment.pk, actual=actual,
                                                        expected=deployment.checkpoint_sha256))
    config = RunConfig.model_validate(deployment.config)
    exchange = _exchange(deployment) if deployment.account_id else None
    if deployment.feed == Deployment.FeedKind.REPLAY:
        market = load_dataset(config.dataset, task=config.task)
        policy = Policy.load(config, checkpoint=checkpoint, market=market)
        feed = ReplayFeed(policy.market, range(deployment.replay_start, deployment.replay_stop),
                          bars_per_second=deployment.bars_per_second, start_after=deployment.last_bar)
    else:
        feed = _live_feed(deployment, config, exchange)
        policy = Policy.load(config, checkpoint=checkpoint, market=feed.market())
    paper = deployment.mode == Deployment.Mode.PAPER
    broker = _paper_broker(deployment, config) if paper else _live_broker(deployment, exchange)
    return Runtime(deployment_id=deployment.pk, policy=policy, feed=feed, broker=broker, paper=paper,
                   owner_id=deployment.owner_id)


def _live_feed(deployment: Deployment, config: RunConfig, exchange) -> Feed:
    """The exchange's closed bars, with the features the strategy was trained on (or DeploymentBroken)."""
    from engine.live.exchange import ExchangeFeed

    trained = load_dataset(config.dataset, task=config.task).feature_names
    feed = ExchangeFeed(exchange, tuple(deployment.symbols), timeframe=deployment.timeframe,
                        history=max(200, config.env_params().window + 1), adjusted_close="zadjcp" in trained)
    given = feed.market().feature_names
    if given != trained:
        raise DeploymentBroken(FEATURES_DIFFER.format(given=", ".join(given), trained=", ".join(trained)))
    return feed


def _paper_broker(deployment: Deployment, config: RunConfig) -> PaperBroker:
    if deployment.broker_state:
        return PaperBroker.from_state(deployment.broker_state)
    long_only = getattr(config.env_params(), "long_only", True)
    params = PaperParams(fill_model=deployment.fill_model, fee_rate=deployment.fee_rate,
                         slippage_bps=deployment.slippage_bps, volume_cap=deployment.volume_cap,
                         allow_short=not long_only)
    return PaperBroker(tuple(deployment.symbols), cash=deployment.initial_cash, params=params)


def _exchange(deployment: Deployment):
    from engine.live.exchange import connect

    account = deployment.account
    return connect(account.exchange, api_key=credentials.unseal(account.api_key_sealed),
                   secret=credentials.unseal(account.secret_sealed), base_url=account.base_url or None)


def _live_broker(deployment: Deployment, exchange) -> Broker:
    from engine.live.exchange import ExchangeBroker

    return ExchangeBroker(exchange, tuple(deployment.symbols), quote=deployment.account.quote)


def reconcile(deployment: Deployment, runtime: Runtime, bar) -> list[str]:
    """Bring the record up to the broker, then compare them; returns the disagreements that remain.

    What the broker did and the record missed (a process killed between the two) is recorded: fills by
    their broker id, orders by their client id. An order the record holds open that the broker never
    received is closed as never sent. Positions and cash must then agree (AGREEMENT); if they do not,
    something else traded the account or the record was changed, and a person must look."""
    broker = runtime.broker
    orders = {}
    for fill in broker.fills():
        orders.setdefault(fill.client_order_id, broker.get_order(fill.client_order_id))
    for row in OrderRow.objects.filter(deployment=deployment, status__in=["new", "accepted", "partially_filled"]):
        order = broker.get_order(row.client_order_id)
        if order is None:
            OrderRow.objects.filter(pk=row.pk).update(status="rejected" if row.status == "new" else "cancelled",
                                                      reason=NEVER_SENT, updated_at=timezone.now())
        else:
            orders[row.client_order_id] = order
    orders.update((order.client_order_id, order) for order in broker.open_orders())
    record_updates(deployment, [Update(orders=[o for o in orders.values() if o is not None], fills=broker.fills())],
                   bar)
    return _disagreements(deployment, broker, paper=runtime.paper)


def _disagreements(deployment: Deployment, broker: Broker, *, paper: bool) -> list[str]:
    account = broker.account()
    recorded = ledger_positions(deployment)
    problems = []
    for symbol in sorted(set(recorded) | set(account.positions)):
        mine, theirs = recorded.get(symbol, 0.0), account.positions.get(symbol, 0.0)
        if not _agree(mine, theirs):
            problems.append(POSITION_DIFFERS.format(symbol=symbol, recorded=mine, actual=theirs))
    # A venue's cash also moves with what the record does not trade (deposits, other holdings), so only
    # a paper account's cash is the record's to match.
    if paper:
        cash = ledger_cash(deployment)
        if not _agree(cash, account.cash, scale=deployment.initial_cash):
            problems.append(CASH_DIFFERS.format(recorded=cash, actual=account.cash))
    return problems


def _agree(a: float, b: float, *, scale: float = 0.0) -> bool:
    return math.isclose(a, b, rel_tol=AGREEMENT, abs_tol=AGREEMENT * max(abs(scale), 1e-12))
