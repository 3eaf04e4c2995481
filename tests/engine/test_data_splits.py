"""split_market: explicit inclusive date ranges, default 70/15/15 ratios, and the refusals."""
import datetime as dt

import numpy as np
import pytest

from engine.data import DataError, MarketData, Splits, split_market


def market_on(dates) -> MarketData:
    """A one-asset market on the given dates (close 1, 2, 3, ...)."""
    t = len(dates)
    return MarketData(
        dates=np.array(dates, dtype="datetime64[ns]"), tickers=("A",),
        prices={"close": np.arange(1.0, t + 1).reshape(t, 1)},
        features=np.zeros((t, 1, 1), dtype=np.float32), feature_names=("x",),
        frequency="daily", periods_per_year=252.0,
    )


# Ten business days: Mon 2021-01-04 .. Fri 2021-01-15.
TEN_DAYS = [f"2021-01-{d:02d}" for d in (4, 5, 6, 7, 8, 11, 12, 13, 14, 15)]


def test_split_market_uses_inclusive_date_ranges():
    market = market_on(TEN_DAYS)
    splits = split_market(market, train=("2021-01-04", "2021-01-08"), valid=("2021-01-11", "2021-01-12"),
                          test=("2021-01-13", "2021-01-15"))
    assert splits == Splits(train=range(0, 5), valid=range(5, 7), test=range(7, 10))


def test_split_market_accepts_dates_and_datetimes_and_allows_gaps():
    market = market_on(TEN_DAYS)
    splits = split_market(market, train=(dt.date(2021, 1, 1), dt.date(2021, 1, 7)),
                          valid=(dt.datetime(2021, 1, 9), dt.datetime(2021, 1, 12)),
                          test=(np.datetime64("2021-01-14"), "2021-01-31"))
    assert splits == Splits(train=range(0, 4), valid=range(5, 7), test=range(8, 10))


def test_split_market_date_only_end_includes_bars_stamped_later_that_day():
    market = market_on(["2021-01-04T23:59:59", "2021-01-05T23:59:59", "2021-01-06T23:59:59"])
    splits = split_market(market, train=("2021-01-04", "2021-01-04"), valid=("2021-01-05", "2021-01-05"),
                          test=("2021-01-06", "2021-01-06"))
    assert splits == Splits(train=range(0, 1), valid=range(1, 2), test=range(2, 3))


def test_split_market_defaults_to_70_15_15_in_time_order():
    market = market_on(np.datetime64("2021-01-01") + np.arange(100))
    assert split_market(market) == Splits(train=range(0, 70), valid=range(70, 85), test=range(85, 100))


def test_split_market_ratio_boundaries_round_down():
    # 10 bars: floor(7.0) = 7, floor(8.5) = 8, so 7 / 1 / 2.
    assert split_market(market_on(TEN_DAYS)) == Splits(train=range(0, 7), valid=range(7, 8), test=range(8, 10))
    assert split_market(market_on(TEN_DAYS), ratios=(0.5, 0.3, 0.2)) == Splits(range(0, 5), range(5, 8), range(8, 10))


def test_split_market_as_dates_gives_first_and_last_date_of_each_split():
    market = market_on(TEN_DAYS)
    dates = split_market(market).as_dates(market)
    assert {k: (str(a)[:10], str(b)[:10]) for k, (a, b) in dates.items()} == {
        "train": ("2021-01-04", "2021-01-12"), "valid": ("2021-01-13", "2021-01-13"),
        "test": ("2021-01-14", "2021-01-15")}


def test_split_market_rejects_overlapping_ranges_naming_both_splits():
    with pytest.raises(DataError, match="the train and valid ranges overlap"):
        split_market(market_on(TEN_DAYS), train=("2021-01-04", "2021-01-11"), valid=("2021-01-11", "2021-01-12"),
                     test=("2021-01-13", "2021-01-15"))


def test_split_market_rejects_overlap_whatever_the_order_of_the_ranges():
    with pytest.raises(DataError, match="the test and train ranges overlap"):
        split_market(market_on(TEN_DAYS), train=("2021-01-08", "2021-01-15"), valid=("2021-01-01", "2021-01-03"),
                     test=("2021-01-04", "2021-01-08"))


def test_split_market_rejects_a_range_without_bars_naming_the_split():
    with pytest.raises(DataError, match="valid split has no bars"):
        split_market(market_on(TEN_DAYS), train=("2021-01-04", "2021-01-08"), valid=("2021-01-09", "2021-01-10"),
                     test=("2021-01-11", "2021-01-15"))


def test_split_market_rejects_a_market_too_short_for_the_ratios():
    with pytest.raises(DataError, match="valid split has no bars"):
        split_market(market_on(TEN_DAYS[:3]))


def test_split_market_rejects_some_but_not_all_ranges():
    with pytest.raises(DataError, match="missing: valid, test"):
        split_market(market_on(TEN_DAYS), train=("2021-01-04", "2021-01-08"))


def test_split_market_rejects_a_range_that_ends_before_it_starts():
    with pytest.raises(DataError, match="test range starts after it ends"):
        split_market(market_on(TEN_DAYS), train=("2021-01-04", "2021-01-05"), valid=("2021-01-06", "2021-01-07"),
                     test=("2021-01-15", "2021-01-08"))


def test_split_market_rejects_an_unparsable_date_naming_the_split():
    with pytest.raises(DataError, match="valid range: cannot parse 'soon'"):
        split_market(market_on(TEN_DAYS), train=("2021-01-04", "2021-01-05"), valid=("2021-01-06", "soon"),
                     test=("2021-01-08", "2021-01-15"))


@pytest.mark.parametrize("ratios, fragment", [
    ((0.6, 0.2, 0.1), "must sum to 1"),
    ((0.8, 0.3, -0.1), "test ratio must be > 0"),
    ((0.8, 0.0, 0.2), "valid ratio must be > 0"),
    ((0.5, 0.5), "3 numbers"),
])
def test_split_market_rejects_bad_ratios(ratios, fragment):
    with pytest.raises(DataError, match=fragment):
        split_market(market_on(TEN_DAYS), ratios=ratios)


def test_split_market_splits_by_whole_bars_on_a_multi_asset_market():
    from engine.data import read_csv

    market = read_csv("/work/shared/data/dj30/test.csv")
    splits = split_market(market, train=("2021-01-01", "2021-06-30"), valid=("2021-07-01", "2021-09-30"),
                          test=("2021-10-01", "2021-12-31"))
    assert splits.train.start == 0 and splits.test.stop == len(market)
    assert splits.train.stop == splits.valid.start and splits.valid.stop == splits.test.start
    assert str(market.dates[splits.valid.start])[:10] == "2021-07-01"
