import math

import pytest

from sessions.charts import MARGIN_LEFT, MARGIN_RIGHT, line_chart, svg_path


def test_svg_path_of_a_known_series():
    # x: 3 points over 100 units -> 0, 50, 100; y: 1 is the bottom (50), 3 the top (0).
    assert svg_path([1, 2, 3], width=100, height=50, y_min=1, y_max=3) == "M0,50 L50,25 L100,0"


def test_svg_path_rounds_to_one_decimal_and_drops_trailing_zeros():
    assert svg_path([0, 1, 0, 2], width=10, height=3, y_min=0, y_max=2) == "M0,3 L3.3,1.5 L6.7,3 L10,0"


@pytest.mark.parametrize("missing", [None, math.nan, math.inf])
def test_svg_path_leaves_a_gap_where_a_value_is_missing(missing):
    assert svg_path([1, 2, missing, 2, 1], width=40, height=10, y_min=1, y_max=2) == "M0,10 L10,0 M30,0 L40,10"


def test_svg_path_draws_a_flat_series_across_the_middle():
    assert svg_path([5, 5, 5], width=20, height=10, y_min=5, y_max=5) == "M0,5 L10,5 L20,5"


def test_svg_path_of_nothing_is_empty():
    assert svg_path([], width=20, height=10, y_min=0, y_max=1) == ""
    assert svg_path([None, None], width=20, height=10, y_min=0, y_max=1) == ""


def test_line_chart_puts_every_series_on_one_scale():
    chart = line_chart(
        {"strategy": ("Strategy", [100, 110, 120]), "benchmark": ("Benchmark", [100, 90, 80])},
        labels=["2024-01-01", "2024-01-02", "2024-01-03"],
        width=100,
        height=40,
        y_format=",.0f",
    )

    strategy, benchmark = chart.lines
    # 80..120 over 40 units: 100 is the middle (20), 120 the top, 80 the bottom.
    assert strategy.d == "M0,20 L50,10 L100,0"
    assert benchmark.d == "M0,20 L50,30 L100,40"
    assert (chart.y_top, chart.y_bottom) == ("120", "80")
    assert (chart.x_first, chart.x_last) == ("2024-01-01", "2024-01-03")
    assert chart.view_width == MARGIN_LEFT + 100 + MARGIN_RIGHT
    assert chart.zero_y is None and not chart.empty


def test_line_chart_marks_zero_only_when_the_values_cross_it():
    crossing = line_chart({"strategy": ("x", [-1, 1])}, width=10, height=40)
    assert crossing.zero_y == 20

    # Drawdowns are <= 0: zero is the plot's top edge, already drawn by the frame.
    drawdown = line_chart({"strategy": ("Drawdown", [0.0, -0.25, -0.1])}, width=10, height=40, y_format=".0%")
    assert drawdown.zero_y is None
    assert (drawdown.y_top, drawdown.y_bottom) == ("0%", "-25%")


def test_line_chart_without_finite_values_is_empty():
    chart = line_chart({"strategy": ("Strategy", [None, None])}, labels=["a", "b"])

    assert chart.empty
    assert chart.y_top == chart.y_bottom == ""
