"""A live deployment through the trading process: ccxt's own binance client against the fake Binance on
127.0.0.1 (tests/fakes/exchange.py), with the exchange keys sealed at rest. Bars are one second long, so
the feed's bars close while the test waits for them (a state, not a clock)."""
import time

import pytest
from cryptography.fernet import Fernet

from sessions.services import session_submit
from strategies.services import dataset_import, strategy_create
from tests.fakes.exchange import API_KEY, SECRET, FakeExchange
from tests.platform.session_helpers import run_here
from tests.platform.test_trading_deployments import run_until
from trading.models import Deployment, ExchangeAccount, Order, Position
from trading.process import TradingProcess
from trading.services import deployment_create, exchange_account_create

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def sealed(settings):
    settings.TRADEMASTER = {**settings.TRADEMASTER, "EXCHANGE_KEY": Fernet.generate_key().decode()}


@pytest.fixture
def buy_and_hold_btc(user, btc_csv, data_dir, runs_dir, deployments_dir):
    """A completed training of the buy-and-hold baseline on real BTC days: it buys at its first bar."""
    dataset = dataset_import(path=btc_csv, name="btc")
    strategy = strategy_create(owner=user, name="hold btc", task="algorithmic_trading", agent="buy_and_hold",
                               dataset=dataset, params={"env": {"window": 5}, "trainer": {"device": "cpu"}})
    done = run_here(session_submit(strategy=strategy, user=user, enqueue=False))
    assert done.status == "completed", done.error
    return done


@pytest.fixture
def fake():
    now = int(time.time())
    with FakeExchange(balances={"USDT": 100_000.0}, now_ms=(now + 3_600) * 1000) as venue:
        # One-second candles from five minutes ago to two minutes ahead: each closes as the clock passes it.
        # A flat price: the fake fills a market order at its latest candle, which is ahead of the feed's.
        rows = [((now + s) * 1000, 40_000.0, 40_010.0, 39_990.0, 40_000.0, 5.0) for s in range(-300, 120)]
        venue.set_candles("BTCUSDT", rows, interval="1s")
        yield venue


def test_a_live_deployment_trades_on_the_exchange_through_ccxt_and_its_record_is_the_venues(
        user, sealed, fake, buy_and_hold_btc):
    account = exchange_account_create(owner=user, name="fake binance", exchange="binance", api_key=API_KEY,
                                      secret=SECRET, base_url=fake.url)
    stored = ExchangeAccount.objects.get(pk=account.pk)
    assert API_KEY not in stored.api_key_sealed and SECRET not in stored.secret_sealed
    assert stored.key_hint == API_KEY[-4:]

    deployment = deployment_create(session=buy_and_hold_btc, user=user, mode="live", feed="live", account=account,
                                   symbols=["BTC/USDT"], timeframe="1s")
    assert deployment.is_live and deployment.symbols == ["BTC/USDT"]

    done = run_until(TradingProcess(), deployment, {"failed", "halted"}, bars=3)
    assert done.status == "running", done.error

    orders = list(Order.objects.filter(deployment=done).order_by("id"))
    first = orders[0]
    assert first.side == "buy" and first.status == "filled" and first.quantity == pytest.approx(2.4975)
    for order in orders:
        # Each order once on the venue (a refusal of its own, below the lot, never reaches it).
        assert len(fake.orders_with(order.client_order_id)) == (0 if order.status == "rejected" else 1)
        assert order.status in ("filled", "rejected"), order.reason
    # The venue took its 0.1% fee in BTC, so cash is left and the next bars top the position up.
    held = Position.objects.get(deployment=done, symbol="BTC/USDT").quantity
    assert held == pytest.approx(fake.balance("BTC")[0], rel=1e-12) and held > 2.49
    assert fake.balance("USDT")[0] < 101.0
    assert Deployment.objects.get(pk=done.pk).equity == pytest.approx(fake.balance("USDT")[0] + held * 40_000.0)
