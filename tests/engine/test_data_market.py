"""MarketData: selecting tickers."""
import numpy as np
import pytest

from engine.data.market import NOT_IN_MARKET
from engine.data.synthetic import synthetic_market


@pytest.fixture(scope="module")
def market():
    return synthetic_market(n_assets=3, n_periods=50, seed=1)


def test_selecting_tickers_keeps_their_columns_in_the_order_asked(market):
    picked = market.select(["SYN02", "SYN00"])
    assert picked.tickers == ("SYN02", "SYN00")
    assert np.array_equal(picked.close, market.close[:, [2, 0]])
    assert np.array_equal(picked.features, market.features[:, [2, 0]])
    assert picked.prices.keys() == market.prices.keys() and np.array_equal(picked.dates, market.dates)


def test_selecting_every_ticker_is_the_market_itself(market):
    assert market.select(market.tickers) is market


def test_selecting_a_ticker_the_market_lacks_is_refused(market):
    with pytest.raises(ValueError) as error:
        market.select(["SYN00", "XYZ"])
    assert str(error.value) == NOT_IN_MARKET.format(missing="XYZ", tickers="SYN00, SYN01, SYN02")
