"""Static line charts drawn server-side as inline SVG: the report page works without JavaScript and
offline. Pure functions over plain lists; the template only places what is computed here.

Missing points (None or NaN: the report stores NaN/inf as None) leave a gap instead of being drawn
as zero, so a hole in the data is not mistaken for a crash of the curve.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

# Room around the plot for the axis labels, in SVG user units.
MARGIN_LEFT = 64
MARGIN_RIGHT = 8
MARGIN_TOP = 8
MARGIN_BOTTOM = 20


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _coordinate(x: float) -> str:
    """One decimal is finer than a screen pixel at the sizes drawn; fewer digits keep the page small."""
    text = f"{x:.1f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def svg_path(values: Sequence[float | None], *, width: float, height: float, y_min: float, y_max: float) -> str:
    """The `d` attribute of an SVG <path> drawing `values` as a line in a width x height box.

    Points are evenly spaced from x=0 (the first value) to x=width (the last); y_max is at the top
    (y=0) and y_min at the bottom (y=height), as SVG's y axis points down. When y_min == y_max (a flat
    series) the line is drawn across the middle. A missing value (None, NaN, inf) ends the current
    segment and the next value starts a new one ("M"), so gaps stay gaps. No values: "".

    >>> svg_path([1, 2, 3], width=100, height=50, y_min=1, y_max=3)
    'M0,50 L50,25 L100,0'
    """
    n = len(values)
    span = y_max - y_min
    step = width / (n - 1) if n > 1 else 0.0
    commands: list[str] = []
    pen_down = False
    for i, value in enumerate(values):
        if not _finite(value):
            pen_down = False
            continue
        y = height / 2 if span == 0 else height - (value - y_min) / span * height
        commands.append(f"{'L' if pen_down else 'M'}{_coordinate(i * step)},{_coordinate(y)}")
        pen_down = True
    return " ".join(commands)


@dataclass(frozen=True)
class Line:
    css_class: str
    label: str
    d: str


@dataclass(frozen=True)
class LineChart:
    """What templates/sessions/_line_chart.html draws. Empty when no series has a finite value."""

    width: int
    height: int
    lines: tuple[Line, ...]
    y_top: str = ""
    y_bottom: str = ""
    x_first: str = ""
    x_last: str = ""
    zero_y: float | None = None  # where y=0 is, when it lies inside the plot (a reference line)

    @property
    def empty(self) -> bool:
        return not any(line.d for line in self.lines)

    @property
    def view_width(self) -> int:
        return MARGIN_LEFT + self.width + MARGIN_RIGHT

    @property
    def view_height(self) -> int:
        return MARGIN_TOP + self.height + MARGIN_BOTTOM

    @property
    def margin_left(self) -> int:
        return MARGIN_LEFT

    @property
    def margin_top(self) -> int:
        return MARGIN_TOP

    @property
    def bottom(self) -> int:
        return MARGIN_TOP + self.height


def line_chart(
    series: Mapping[str, tuple[str, Sequence[float | None]]],
    *,
    labels: Sequence = (),
    width: int = 800,
    height: int = 220,
    y_format: str = ",.2f",
) -> LineChart:
    """Lines on one shared y scale (so a strategy and its benchmark compare by eye).

    series: css class -> (label, values); all of the same length as `labels` (the x axis, e.g. dates;
        only the first and last are printed).
    y_format: a format spec for the y-axis labels (",.0f" for money, ".1%" for fractions).
    """
    finite = [v for _, values in series.values() for v in values if _finite(v)]
    if not finite:
        return LineChart(width, height, tuple(Line(c, label, "") for c, (label, _) in series.items()))
    y_min, y_max = min(finite), max(finite)
    lines = tuple(
        Line(css_class, label, svg_path(values, width=width, height=height, y_min=y_min, y_max=y_max))
        for css_class, (label, values) in series.items()
    )
    zero_y = None
    if y_min < 0 < y_max:
        zero_y = float(_coordinate(height - (0 - y_min) / (y_max - y_min) * height))
    return LineChart(
        width,
        height,
        lines,
        y_top=format(y_max, y_format),
        y_bottom=format(y_min, y_format),
        x_first=str(labels[0]) if len(labels) else "",
        x_last=str(labels[-1]) if len(labels) else "",
        zero_y=zero_y,
    )
