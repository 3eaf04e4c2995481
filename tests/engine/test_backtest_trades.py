"""The trades a backtest report lists are the fills that happened: a position held from bar to bar is
no trade, however the env's float64 target solving rounds it (issue #10: a DQN report listed 574
"trades", 564 of them 0 shares at 0 fee)."""
import numpy as np
import pytest
import torch

from engine.agents import AGENTS
from engine.backtest.backtester import TRADE_DUST, make_env, run_backtest
from engine.data.market import MarketData
from engine.data.synthetic import synthetic_market
from engine.envs import PARAMS

TASK = "algorithmic_trading"
BARS = range(100, 160)


class Scripted:
    """A policy that plays a fixed list of actions, one per step (the rollout's `agent.act`)."""

    def __init__(self, actions):
        self.actions = list(actions)
        self.step = 0

    def act(self, obs, deterministic=True):
        action = self.actions[min(self.step, len(self.actions) - 1)]
        self.step += 1
        return torch.tensor([action] * obs.shape[0])


def hand_market(close) -> MarketData:
    close = np.asarray(close, dtype=np.float64).reshape(-1, 1)
    t = len(close)
    return MarketData(
        dates=np.datetime64("2020-01-01", "ns") + np.arange(t) * np.timedelta64(1, "D"),
        tickers=("A",), prices={"close": close}, features=np.arange(t, dtype=np.float32).reshape(t, 1, 1),
        feature_names=("f0",), frequency="daily", periods_per_year=252.0, name="hand",
    )


@pytest.fixture(scope="module")
def market():
    return synthetic_market(n_assets=1, n_periods=160, seed=4)


def test_holding_a_long_position_is_one_trade_not_one_per_bar(market):
    params = PARAMS[TASK](window=5)  # target mode, long only: buy_and_hold re-applies "long" every bar
    agent = AGENTS["buy_and_hold"](make_env(TASK, market, BARS, params), device="cpu")

    report = run_backtest(agent, TASK, market, BARS, params)

    assert len(report["trades"]) == 1
    (buy,) = report["trades"]
    assert buy["side"] == "buy" and buy["shares"] == pytest.approx(report["positions"][0])
    assert buy["fee"] == pytest.approx(params.transaction_cost * buy["shares"] * buy["price"])


def test_a_known_script_lists_its_buy_and_its_sell_only():
    # Long at 100, held through 110 and 121, flat at 121: one buy of 10 shares, one sell of them.
    market = hand_market([100.0, 110.0, 121.0, 121.0, 130.0])
    params = PARAMS[TASK](window=1, initial_cash=1010.0, transaction_cost=0.01)

    report = run_backtest(Scripted([1, 1, 0, 0]), TASK, market, range(0, 5), params)

    assert [(t["date"], t["side"], t["price"]) for t in report["trades"]] == [
        ("2020-01-01", "buy", 100.0), ("2020-01-03", "sell", 121.0)]
    assert [t["shares"] for t in report["trades"]] == pytest.approx([10.0, 10.0])
    assert [t["fee"] for t in report["trades"]] == pytest.approx([10.0, 12.1])


def test_every_listed_trade_is_a_fill_worth_more_than_rounding_and_they_add_up_to_the_position(market):
    params = PARAMS[TASK](window=5, long_only=False)  # random long/short/flat: holds, flips and rebalances
    agent = AGENTS["random"](make_env(TASK, market, BARS, params), device="cpu")

    report = run_backtest(agent, TASK, market, BARS, params)

    values = [point["value"] for point in report["equity_curve"]]
    dates = [point["date"] for point in report["equity_curve"]]
    for trade in report["trades"]:
        before = values[dates.index(trade["date"])]
        assert trade["shares"] * trade["price"] > TRADE_DUST * before and trade["fee"] > 0
    signed = sum(t["shares"] if t["side"] == "buy" else -t["shares"] for t in report["trades"])
    assert signed == pytest.approx(report["positions"][-1], abs=1e-6)
    assert len(report["trades"]) < len(BARS) - 1  # some bars held their position


def test_an_order_mode_hold_is_no_trade(market):
    params = PARAMS[TASK](window=5, action_mode="order", order_size=0.2)

    report = run_backtest(Scripted([2, 1, 1, 1, 0, 1]), TASK, market, BARS, params)

    assert [t["side"] for t in report["trades"]] == ["buy", "sell"]
