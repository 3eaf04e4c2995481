"""engine.live.replay: bars in order with their values, restarts, pacing on a fake clock, the end."""
import math

import numpy as np
import pytest

from engine.data.market import MarketData
from engine.data.synthetic import synthetic_market
from engine.live.replay import ReplayFeed


def hand_market(with_ohlv: bool = True) -> MarketData:
    """3 hourly bars of 2 tickers; close of bar t, ticker i = 10 * (i + 1) + t."""
    close = np.array([[10.0, 20.0], [11.0, 21.0], [12.0, 22.0]])
    prices = {"close": close}
    if with_ohlv:
        prices |= {"open": close - 0.5, "high": close + 1.0, "low": close - 1.0,
                   "volume": np.array([[100.0, 200.0], [110.0, np.nan], [120.0, 220.0]])}
    return MarketData(
        dates=np.array(["2024-03-01T09:00", "2024-03-01T10:00", "2024-03-04T09:00"], dtype="datetime64[ns]"),
        tickers=("AAA", "BBB"), prices=prices, features=np.zeros((3, 2, 1), dtype=np.float32),
        feature_names=("f",), frequency="hourly", periods_per_year=1764.0,
    )


class FakeClock:
    """Seconds that move only when the test says so."""

    def __init__(self, now: float = 100.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def no_clock() -> float:
    raise AssertionError("an unpaced feed must not read the clock")


def test_bars_come_in_order_with_the_rows_values_and_the_feed_then_finishes():
    market = hand_market()
    feed = ReplayFeed(market, range(3), clock=no_clock)
    assert feed.symbols == ("AAA", "BBB") and not feed.finished and feed.seconds_to_next() == 0.0

    bars = [feed.poll(), feed.poll()]
    assert not feed.finished
    bars.append(feed.poll())
    assert feed.finished and feed.poll() is None and feed.seconds_to_next() == 0.0

    assert [b.index for b in bars] == [0, 1, 2]
    assert [b.time for b in bars] == ["2024-03-01T09:00:00", "2024-03-01T10:00:00", "2024-03-04T09:00:00"]
    second = bars[1]
    assert second.symbols == ("AAA", "BBB")
    assert second.close.tolist() == [11.0, 21.0] and second.open.tolist() == [10.5, 20.5]
    assert second.high.tolist() == [12.0, 22.0] and second.low.tolist() == [10.0, 20.0]
    assert second.volume[0] == 110.0 and math.isnan(second.volume[1])
    assert second.prices() == {"AAA": 11.0, "BBB": 21.0}


def test_prices_the_market_lacks_become_the_close_and_volume_becomes_nan():
    bar = ReplayFeed(hand_market(with_ohlv=False), range(1, 2)).poll()
    assert bar.open.tolist() == bar.high.tolist() == bar.low.tolist() == bar.close.tolist() == [11.0, 21.0]
    assert bar.volume.shape == (2,) and np.isnan(bar.volume).all()


def test_bars_are_copies_and_market_is_the_market_itself():
    market = hand_market()
    feed = ReplayFeed(market, range(3))
    bar = feed.poll()
    bar.close[0] = -1.0
    bar.open[0] = -1.0
    assert market.close[0, 0] == 10.0 and market.prices["open"][0, 0] == 9.5
    assert feed.market() is market
    assert feed.close() is None


def test_a_sub_range_and_a_step_are_replayed_as_given():
    market = synthetic_market(n_assets=2, n_periods=20, seed=1)
    feed = ReplayFeed(market, range(4, 15, 5))
    indices = [feed.poll().index for _ in range(3)]
    assert indices == [4, 9, 14] and feed.finished


@pytest.mark.parametrize("start_after, expected", [
    (None, [5, 6, 7, 8, 9]), (-1, [5, 6, 7, 8, 9]), (4, [5, 6, 7, 8, 9]), (5, [6, 7, 8, 9]), (7, [8, 9]), (9, []),
])
def test_start_after_continues_after_the_last_bar_handled(start_after, expected):
    market = synthetic_market(n_assets=2, n_periods=20, seed=1)
    feed = ReplayFeed(market, range(5, 10), start_after=start_after)
    got = []
    while (bar := feed.poll()) is not None:
        got.append(bar.index)
    assert got == expected and feed.finished


def test_start_after_between_stepped_bars_continues_at_the_next_one():
    market = synthetic_market(n_assets=2, n_periods=20, seed=1)
    feed = ReplayFeed(market, range(0, 10, 2), start_after=3)
    assert [feed.poll().index for _ in range(3)] == [4, 6, 8] and feed.finished


def test_pacing_releases_bar_k_at_first_poll_plus_k_over_the_rate():
    clock = FakeClock(100.0)
    feed = ReplayFeed(hand_market(), range(3), bars_per_second=4.0, clock=clock)  # one bar every 0.25 s
    assert feed.seconds_to_next() == 0.0  # the first bar is due at the first poll
    assert feed.poll().index == 0
    assert feed.seconds_to_next() == 0.25
    assert feed.poll() is None

    clock.now = 100.125
    assert feed.seconds_to_next() == 0.125 and feed.poll() is None
    clock.now = 100.25
    assert feed.seconds_to_next() == 0.0 and feed.poll().index == 1
    assert feed.poll() is None

    clock.now = 101.0  # late: the last bar is due (at 100.5), and the feed ends with it
    assert feed.seconds_to_next() == 0.0 and feed.poll().index == 2
    assert feed.finished and feed.poll() is None and feed.seconds_to_next() == 0.0


def test_a_late_loop_catches_up_one_bar_per_poll_without_drift():
    clock = FakeClock(0.0)
    market = synthetic_market(n_assets=2, n_periods=10, seed=1)
    feed = ReplayFeed(market, range(10), bars_per_second=2.0, clock=clock)  # bar k due at k / 2
    assert feed.poll().index == 0
    clock.now = 2.0  # bars 1 to 4 are due (at 0.5, 1, 1.5, 2), bar 5 at 2.5
    assert [feed.poll().index for _ in range(4)] == [1, 2, 3, 4]
    assert feed.poll() is None and feed.seconds_to_next() == 0.5


@pytest.mark.parametrize("kwargs, parameter", [
    (dict(bars=range(0)), "bars"),
    (dict(bars=range(2, 0, -1)), "bars"),
    (dict(bars=range(0, 4)), "bars"),
    (dict(bars=range(-1, 2)), "bars"),
    (dict(bars=range(3), bars_per_second=0.0), "bars_per_second"),
    (dict(bars=range(3), bars_per_second=-1.0), "bars_per_second"),
    (dict(bars=range(3), bars_per_second=math.inf), "bars_per_second"),
    (dict(bars=range(3), bars_per_second=math.nan), "bars_per_second"),
    (dict(bars=range(2), start_after=2), "start_after"),
])
def test_bad_arguments_are_refused_naming_the_parameter(kwargs, parameter):
    with pytest.raises(ValueError, match=parameter):
        ReplayFeed(hand_market(), **kwargs)
