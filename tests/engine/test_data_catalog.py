"""Datasets by name: a built-in is one market whatever the task; single-asset tasks trade its first asset."""
import numpy as np
import pytest

from engine.data.catalog import BUILTINS, UNKNOWN_BUILTIN, builtin_market, load_dataset, traded_tickers
from engine.data.synthetic import synthetic_market
from engine.tasks import TASKS


@pytest.mark.parametrize("name", BUILTINS)
def test_a_builtin_is_the_synthetic_market_of_its_settings(name):
    market = builtin_market(name)
    expected = synthetic_market(name=name, **BUILTINS[name])
    assert market.tickers == expected.tickers == ("SYN00", "SYN01", "SYN02", "SYN03", "SYN04")
    assert np.array_equal(market.close, expected.close) and np.array_equal(market.features, expected.features)


def test_portfolio_management_trades_every_asset_and_the_single_asset_tasks_the_first():
    tickers = ("SYN00", "SYN01", "SYN02")
    assert traded_tickers(tickers, "portfolio_management") == tickers
    assert traded_tickers(tickers, "algorithmic_trading") == traded_tickers(tickers, "order_execution") == ("SYN00",)


@pytest.mark.parametrize("task", TASKS)
def test_loading_a_builtin_for_a_task_gives_the_columns_it_trades_of_the_same_market(task):
    whole = builtin_market("synthetic")
    market = load_dataset("synthetic", task=task)
    columns = [whole.tickers.index(t) for t in traded_tickers(whole.tickers, task)]
    assert market.tickers == traded_tickers(whole.tickers, task)
    assert np.array_equal(market.dates, whole.dates)
    for key, prices in whole.prices.items():
        assert np.array_equal(market.prices[key], prices[:, columns]), key
    assert np.array_equal(market.features, whole.features[:, columns])


def test_an_unknown_builtin_is_refused_with_the_builtins_named():
    with pytest.raises(ValueError) as error:
        builtin_market("nope")
    assert str(error.value) == UNKNOWN_BUILTIN.format(name="nope", builtins="synthetic, synthetic-signal")


def test_an_unknown_dataset_is_neither_a_builtin_nor_a_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a built-in"):
        load_dataset(str(tmp_path / "missing.csv"))
