"""read_csv on the real dj30 and btc files, on the single-asset format, and the missing-ticker modes.

Expected values come from the files themselves (read independently with the csv module) or from
small hand-written CSVs whose answers can be checked by eye.
"""
import csv
import math
import time
from pathlib import Path

import numpy as np
import pytest

from engine.data import DataError, MarketData, read_csv

DJ30 = Path("/work/shared/data/dj30")
BTC = Path("/work/shared/data/btc/btc_daily.csv")
DJ30_FEATURES = ("zopen", "zhigh", "zlow", "zadjcp", "zclose", "zd_5", "zd_10", "zd_15", "zd_20", "zd_25", "zd_30")


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text.lstrip())
    return path


def csv_rows(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_reader_reads_dj30_train_with_its_own_features():
    market = read_csv(DJ30 / "train.csv")
    rows = csv_rows(DJ30 / "train.csv")
    tickers = sorted({r["tic"] for r in rows})
    dates = sorted({r["date"] for r in rows})
    assert isinstance(market, MarketData)
    assert market.tickers == tuple(tickers) and len(tickers) == 29
    assert len(market) == len(dates)
    assert str(market.dates[0])[:10] == dates[0] and str(market.dates[-1])[:10] == dates[-1]
    assert market.feature_names == DJ30_FEATURES
    assert market.features.dtype == np.float32 and market.dates.dtype == np.dtype("datetime64[ns]")
    assert (market.frequency, market.periods_per_year, market.meta["asset_class"]) == ("daily", 252.0, "equity")
    assert set(market.prices) == {"open", "high", "low", "close", "adjcp"}
    # A row picked from the middle of the file lands at its (date, ticker) cell.
    row = rows[len(rows) // 2]
    t, n = dates.index(row["date"]), tickers.index(row["tic"])
    assert market.close[t, n] == float(row["close"])
    assert market.prices["adjcp"][t, n] == float(row["adjcp"])
    assert market.features[t, n, DJ30_FEATURES.index("zd_10")] == np.float32(float(row["zd_10"]))


def test_reader_concatenates_the_three_dj30_files_into_one_market_quickly():
    started = time.perf_counter()
    market = read_csv([DJ30 / "train.csv", DJ30 / "valid.csv", DJ30 / "test.csv"])
    elapsed = time.perf_counter() - started
    assert market.n_assets == 29
    assert str(market.dates[0])[:10] == "2012-01-03" and str(market.dates[-1])[:10] == "2021-12-31"
    assert np.all(np.diff(market.dates.astype(np.int64)) > 0)
    total_rows = sum(len(csv_rows(DJ30 / f)) for f in ("train.csv", "valid.csv", "test.csv"))
    assert len(market) * market.n_assets == total_rows  # every row used once, no cell invented
    assert (market.frequency, market.periods_per_year) == ("daily", 252.0)
    assert market.name == "train"
    assert elapsed < 2.0, f"reading dj30 took {elapsed:.2f}s"


def test_reader_order_of_files_does_not_change_the_market():
    forward = read_csv([DJ30 / "valid.csv", DJ30 / "test.csv"])
    backward = read_csv([DJ30 / "test.csv", DJ30 / "valid.csv"])
    assert np.array_equal(forward.dates, backward.dates)
    assert np.array_equal(forward.close, backward.close)
    assert np.array_equal(forward.features, backward.features)


def test_reader_reads_btc_as_one_crypto_asset_with_daily_timestamps():
    market = read_csv(BTC)
    rows = csv_rows(BTC)
    assert market.tickers == ("BTC",)
    assert len(market) == len(rows)
    assert str(market.dates[0]) == "2013-04-29T23:59:59.000000000"
    assert (market.frequency, market.meta["asset_class"], market.periods_per_year) == ("daily", "crypto", 365.0)
    assert market.close[-1, 0] == float(rows[-1]["close"])


def test_reader_explicit_asset_class_and_periods_per_year_override_detection():
    assert read_csv(BTC, asset_class="equity").periods_per_year == 252.0
    market = read_csv(BTC, periods_per_year=360)
    assert market.periods_per_year == 360.0 and market.meta["asset_class"] == "crypto"


def test_reader_takes_the_ticker_of_a_file_without_tic_from_name_or_file_stem(tmp_path):
    path = write(tmp_path, "aapl.csv", """
date,open,high,low,close,volume
2021-01-04,10,10.5,9.5,10,100
2021-01-05,10,11.5,9.8,11,200
2021-01-06,11,11.2,9.8,9.9,300
""")
    market = read_csv(path)
    assert market.tickers == ("aapl",) and market.name == "aapl"
    assert read_csv(path, name="Apple").tickers == ("Apple",)
    assert market.prices["volume"][:, 0].tolist() == [100, 200, 300]


def test_reader_computes_default_features_when_the_file_has_none(tmp_path):
    path = write(tmp_path, "one.csv", """
date,open,high,low,close
2021-01-04,10,10.5,9.5,10
2021-01-05,10,11.5,9.8,11
2021-01-06,11,11.2,9.8,9.9
""")
    market = read_csv(path)
    assert market.meta["feature_source"] == "computed"
    f = {name: market.features[:, 0, i] for i, name in enumerate(market.feature_names)}
    assert set(f) == {"zopen", "zhigh", "zlow", "zclose", "zd_5", "zd_10", "zd_15", "zd_20", "zd_25", "zd_30"}
    np.testing.assert_allclose(f["zclose"], [0.0, 0.1, -0.1], atol=1e-6)
    np.testing.assert_allclose(f["zopen"], [0.0, 10 / 11 - 1, 11 / 9.9 - 1], atol=1e-6)
    np.testing.assert_allclose(f["zd_5"], [0.0, 10.5 / 11 - 1, (10 + 11 + 9.9) / 3 / 9.9 - 1], atol=1e-6)


def test_reader_sorts_tickers_and_dates_and_keeps_feature_order(tmp_path):
    path = write(tmp_path, "m.csv", """
date,tic,close,beta,alpha
2021-01-05,ZZ,4,0.4,-0.4
2021-01-04,ZZ,3,0.3,-0.3
2021-01-05,AA,2,0.2,-0.2
2021-01-04,AA,1,0.1,-0.1
""")
    market = read_csv(path)
    assert market.tickers == ("AA", "ZZ")
    assert market.feature_names == ("beta", "alpha")
    assert market.close.tolist() == [[1, 3], [2, 4]]
    np.testing.assert_allclose(market.features[..., 0], [[0.1, 0.3], [0.2, 0.4]], rtol=1e-6)


def test_reader_ignores_the_unnamed_index_and_text_columns(tmp_path):
    path = write(tmp_path, "m.csv", """
,date,tic,close,sector,score
0,2021-01-04,AA,1,tech,0.5
1,2021-01-05,AA,2,tech,0.6
""")
    market = read_csv(path)
    assert market.feature_names == ("score",)


def test_reader_matches_known_columns_case_insensitively(tmp_path):
    path = write(tmp_path, "yahoo.csv", """
Date,Open,High,Low,Close,Adj Close,Volume
2021-01-04,10,10.5,9.5,10,9,100
2021-01-05,10,11.5,9.8,11,9.9,200
""")
    market = read_csv(path)
    assert set(market.prices) == {"open", "high", "low", "close", "adjcp", "volume"}
    assert market.prices["adjcp"][:, 0].tolist() == [9, 9.9]


def test_reader_converts_timezone_aware_dates_to_naive_utc(tmp_path):
    path = write(tmp_path, "tz.csv", """
date,close
2021-01-04 09:00:00+01:00,1
2021-01-05 09:00:00+01:00,2
2021-01-06 09:00:00+01:00,3
""")
    market = read_csv(path)
    assert str(market.dates[0]) == "2021-01-04T08:00:00.000000000"


PANEL_WITH_GAP = """
date,tic,open,high,low,close,volume
2021-01-04,AA,1.0,1.2,0.9,1.1,10
2021-01-04,BB,5.0,5.5,4.5,5.2,50
2021-01-05,AA,1.1,1.4,1.0,1.3,11
2021-01-06,AA,1.3,1.5,1.2,1.4,12
2021-01-06,BB,5.2,5.9,5.1,5.8,52
2021-01-07,AA,1.4,1.6,1.3,1.5,13
2021-01-07,BB,5.8,6.0,5.6,5.9,53
"""


def test_reader_rejects_a_ticker_missing_on_a_date_naming_ticker_and_date(tmp_path):
    path = write(tmp_path, "gap.csv", PANEL_WITH_GAP)
    with pytest.raises(DataError) as info:
        read_csv(path)
    message = str(info.value)
    assert "gap.csv" in message and "'BB'" in message and "2021-01-05" in message and "column 'tic'" in message
    assert info.value.column == "tic" and info.value.file == str(path)


def test_reader_missing_drop_removes_the_dates_where_a_ticker_is_absent(tmp_path):
    market = read_csv(write(tmp_path, "gap.csv", PANEL_WITH_GAP), missing="drop")
    assert [str(d)[:10] for d in market.dates] == ["2021-01-04", "2021-01-06", "2021-01-07"]
    assert market.close.tolist() == [[1.1, 5.2], [1.4, 5.8], [1.5, 5.9]]
    assert market.meta["dropped_dates"] == 1


def test_reader_missing_ffill_carries_the_previous_close_as_a_flat_bar_with_no_volume(tmp_path):
    market = read_csv(write(tmp_path, "gap.csv", PANEL_WITH_GAP), missing="ffill")
    assert len(market) == 4 and market.meta["filled_bars"] == 1
    bb = market.tickers.index("BB")
    assert market.close[:, bb].tolist() == [5.2, 5.2, 5.8, 5.9]
    assert [market.prices[k][1, bb] for k in ("open", "high", "low")] == [5.2, 5.2, 5.2]
    assert market.prices["volume"][:, bb].tolist() == [50, 0, 52, 53]
    zclose = market.features[:, bb, market.feature_names.index("zclose")]
    np.testing.assert_allclose(zclose, [0.0, 0.0, 5.8 / 5.2 - 1, 5.9 / 5.8 - 1], atol=1e-6)


def test_reader_missing_ffill_copies_file_features_from_the_previous_bar(tmp_path):
    path = write(tmp_path, "f.csv", """
date,tic,close,score
2021-01-04,AA,1,0.1
2021-01-04,BB,2,0.2
2021-01-05,AA,1,0.3
2021-01-06,AA,1,0.5
2021-01-06,BB,2,0.6
""")
    market = read_csv(path, missing="ffill")
    np.testing.assert_allclose(market.features[:, 1, 0], [0.2, 0.2, 0.6], rtol=1e-6)


def test_reader_missing_ffill_rejects_a_ticker_absent_on_the_first_date(tmp_path):
    path = write(tmp_path, "late.csv", """
date,tic,close
2021-01-04,AA,1
2021-01-05,AA,2
2021-01-05,BB,3
""")
    first_date_missing = r"late\.csv, column 'tic': ticker 'BB' has no bar on the first date 2021-01-04"
    with pytest.raises(DataError, match=first_date_missing):
        read_csv(path, missing="ffill")


def test_reader_missing_drop_that_leaves_no_date_is_an_error(tmp_path):
    path = write(tmp_path, "apart.csv", """
date,tic,close
2021-01-04,AA,1
2021-01-05,BB,3
""")
    with pytest.raises(DataError, match="leaves nothing"):
        read_csv(path, missing="drop")


@pytest.mark.parametrize("kwargs, parameter", [
    ({"missing": "interpolate"}, "missing"),
    ({"asset_class": "bonds"}, "asset_class"),
    ({"periods_per_year": 0}, "periods_per_year"),
])
def test_reader_rejects_bad_arguments_naming_the_parameter(kwargs, parameter):
    with pytest.raises(ValueError, match=parameter):
        read_csv(BTC, **kwargs)


def test_reader_accepts_irregular_spacing_only_with_explicit_periods_per_year(tmp_path):
    path = write(tmp_path, "odd.csv", """
date,close
2021-01-04,1
2021-01-07,2
2021-01-10,3
""")
    with pytest.raises(DataError, match=r"odd\.csv, column 'date': median spacing"):
        read_csv(path)
    market = read_csv(path, periods_per_year=1000)
    assert market.frequency == "irregular" and math.isclose(market.periods_per_year, 1000)
