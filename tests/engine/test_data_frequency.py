"""detect_frequency, periods_per_year and the asset-class rule, on hand-built dates."""
import numpy as np
import pandas as pd
import pytest

from engine.data import DataError, detect_frequency, periods_per_year
from engine.data.frequency import detect_asset_class


@pytest.mark.parametrize("freq, expected", [
    ("min", "minute"), ("5min", "5min"), ("15min", "15min"), ("30min", "30min"), ("h", "hourly"),
    ("4h", "4hourly"), ("D", "daily"), ("B", "daily"), ("W-MON", "weekly"), ("ME", "monthly"),
])
def test_detect_frequency_recognises_regular_spacings(freq, expected):
    assert detect_frequency(pd.date_range("2021-01-01", periods=60, freq=freq).to_numpy()) == expected


def test_detect_frequency_ignores_gaps_such_as_weekends_and_holidays():
    days = pd.bdate_range("2021-01-01", periods=60)
    assert detect_frequency(days.delete([5, 17, 33]).to_numpy()) == "daily"


def test_detect_frequency_rejects_fewer_than_two_dates():
    with pytest.raises(DataError, match="at least 2 dates"):
        detect_frequency(np.array(["2021-01-01"], dtype="datetime64[ns]"))


def test_detect_frequency_rejects_a_spacing_matching_no_frequency():
    with pytest.raises(DataError, match="3 days"):
        detect_frequency(pd.date_range("2021-01-01", periods=10, freq="3D").to_numpy())


@pytest.mark.parametrize("frequency, equity, crypto", [
    ("minute", 252 * 6.5 * 60, 365 * 24 * 60), ("5min", 252 * 6.5 * 12, 365 * 24 * 12),
    ("15min", 252 * 6.5 * 4, 365 * 24 * 4), ("30min", 252 * 13, 365 * 48), ("hourly", 1638, 8760),
    ("4hourly", 252 * 6.5 / 4, 365 * 6), ("daily", 252, 365), ("weekly", 52, 52), ("monthly", 12, 12),
])
def test_periods_per_year_table(frequency, equity, crypto):
    assert periods_per_year(frequency, "equity") == pytest.approx(equity)
    assert periods_per_year(frequency, "crypto") == pytest.approx(crypto)


@pytest.mark.parametrize("frequency, asset_class, parameter", [("yearly", "equity", "frequency"),
                                                                ("daily", "bonds", "asset_class")])
def test_periods_per_year_rejects_unknown_values_naming_the_parameter(frequency, asset_class, parameter):
    with pytest.raises(ValueError, match=parameter):
        periods_per_year(frequency, asset_class)


def test_asset_class_is_crypto_when_bars_fall_on_weekends():
    assert detect_asset_class(pd.date_range("2021-01-01", periods=100, freq="D").to_numpy(), "daily") == "crypto"
    assert detect_asset_class(pd.bdate_range("2021-01-01", periods=100).to_numpy(), "daily") == "equity"
    hourly_24_7 = pd.date_range("2021-01-01", periods=500, freq="h").to_numpy()
    assert detect_asset_class(hourly_24_7, "hourly") == "crypto"
    sundays = pd.date_range("2021-01-03", periods=30, freq="W-SUN").to_numpy()
    assert detect_asset_class(sundays, "weekly") == "equity"
