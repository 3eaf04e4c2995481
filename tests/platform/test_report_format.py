"""How the pages name and print numbers (sessions.report_format): a table a person can check by hand."""
import math

import pytest

from sessions.report_format import decimals_of, metric, metric_heading, metric_label


@pytest.mark.parametrize(("name", "label"), [
    ("max_drawdown_duration", "Max drawdown duration (bars)"),
    ("sharpe", "Sharpe ratio (annualised)"),
    ("n_periods", "Bars in the period"),
    ("shortfall_bps", "Implementation shortfall (mean, bps)"),
    ("eval/total_return", "Validation total return"),
    ("eval/sharpe", "Validation Sharpe ratio (annualised)"),
    ("train/loss", "Training loss"),
    ("train/q_value", "Training mean Q value"),
    ("time/epoch_seconds", "Epoch time (s)"),
    ("custom/thing", "custom/thing"),  # a name the table does not know keeps its own
])
def test_metric_names_read_in_words_with_their_units(name, label):
    assert metric_label(name) == label


def test_a_column_heading_is_the_short_name_where_there_is_one():
    assert metric_heading("sharpe") == "Sharpe ratio"
    assert metric_heading("eval/sharpe") == "Validation Sharpe ratio"
    assert metric_heading("total_return") == "Total return"
    assert metric_heading("sharpe", "Test") == "Test Sharpe ratio"
    assert metric_heading("total_return", "Test") == "Test total return"


@pytest.mark.parametrize(("value", "name", "printed"), [
    (0.1234, "total_return", "12.34%"),
    (-0.2, "eval/total_return", "-20.00%"),
    (1.23456, "sharpe", "1.23"),
    (12.0, "max_drawdown_duration", "12"),  # counts without decimals
    (1234.0, "n_periods", "1,234"),
    (1234.5, "fees", "1,234.50"),  # money with two
    (1000000.0, "final_value", "1,000,000.00"),
    (12.345, "shortfall_bps", "12.3"),
    (2.04, "time/epoch_seconds", "2.0"),
    (0.4321, "train/loss", "0.4321"),
    (0.000045, "train/loss", "4.500e-05"),  # not "0.0000"
    (0.0, "train/loss", "0.0000"),
    (12345.678, "train/loss", "12,345.68"),
    (None, "sharpe", "—"),
    (math.nan, "sharpe", "—"),
    (math.inf, "total_return", "—"),
    ("2024-01-01", "", "2024-01-01"),  # not a number: as it is
])
def test_each_kind_of_metric_prints_its_own_way(value, name, printed):
    assert metric(value, name) == printed


@pytest.mark.parametrize(("values", "least", "most", "decimals"), [
    ([144.5399932861328, 139.0], 2, 6, 2),  # a 2-decimal quote stored as float32, widened
    ([1.23456, 1.2], 2, 6, 5),  # an FX pair's five
    ([101.25, 101.375], 2, 6, 3),
    ([168.58680352770114], 2, 6, 4),  # a synthetic price: 168.5868 to float32 precision
    ([168.58680352770114, 0.12345678901], 2, 6, 6),  # more digits than most: six significant digits
    ([0.000123456789], 2, 6, 6),
    ([1000.0, 0.0], 0, 4, 0),  # whole shares
    ([2.5, 10.0], 0, 4, 1),
    ([], 2, 6, 2),
    ([None, math.nan], 2, 6, 2),
])
def test_the_decimals_of_a_column_are_the_fewest_that_print_its_values_as_they_are(values, least, most, decimals):
    assert decimals_of(values, least=least, most=most) == decimals
