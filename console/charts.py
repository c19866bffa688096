"""Charts for the managers' page, drawn on the server as inline SVG: no script, no chart
library, nothing fetched. Each chart is its geometry here; `reports.html` writes the SVG."""

from dataclasses import dataclass, field

WIDTH, HEIGHT = 640, 240
# Room for the axis labels (left, bottom) and the chart's breathing space (top, right).
LEFT, BOTTOM, TOP, RIGHT = 44, 28, 12, 12
# Distinct for the common kinds of colour blindness (Okabe and Ito's palette).
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")


@dataclass
class Point:
    x: float
    y: float
    label: str


@dataclass
class Series:
    name: str
    colour: str
    points: list[Point] = field(default_factory=list)
    # A horizontal line (the series' target), in chart coordinates.
    target_y: float | None = None

    @property
    def path(self) -> str:
        return " ".join(f"{p.x:.1f},{p.y:.1f}" for p in self.points)


@dataclass
class Bar:
    x: float
    y: float
    width: float
    height: float
    colour: str
    label: str


@dataclass
class Chart:
    width: int
    height: int
    # (y, text) of the value axis, (x, text) of the time axis.
    y_ticks: list[tuple[float, str]]
    x_ticks: list[tuple[float, str]]
    series: list[Series] = field(default_factory=list)
    bars: list[Bar] = field(default_factory=list)
    legend: list[tuple[str, str]] = field(default_factory=list)  # (colour, name)
    # Where the plot area starts and ends along x, for the grid lines.
    x0: float = LEFT
    x1: float = WIDTH - RIGHT


def _x(index: int, count: int) -> float:
    """The middle of slot `index` of `count` along the time axis."""
    return LEFT + (index + 0.5) * (WIDTH - LEFT - RIGHT) / max(count, 1)


def _y(share: float) -> float:
    """0..1 of the value axis, upwards."""
    return HEIGHT - BOTTOM - share * (HEIGHT - BOTTOM - TOP)


def compliance_over_time(buckets: list[str], compliance: dict[str, list[float | None]],
                         targets: dict[str, float], percent) -> Chart:  # noqa: ANN001
    """One line per service level through its share met in each bucket (gaps where none was
    measured), and its target as a dashed line of the same colour."""
    chart = Chart(WIDTH, HEIGHT, y_ticks=[(_y(s), percent(s)) for s in (0, 0.25, 0.5, 0.75, 1)],
                  x_ticks=[(_x(i, len(buckets)), b) for i, b in enumerate(buckets)])
    for n, (name, shares) in enumerate(compliance.items()):
        colour = PALETTE[n % len(PALETTE)]
        points = [Point(_x(i, len(buckets)), _y(s), f"{name} {buckets[i]}: {percent(s)}")
                  for i, s in enumerate(shares) if s is not None]
        chart.series.append(Series(name, colour, points, _y(targets[name]) if name in targets else None))
        chart.legend.append((colour, name))
    return chart


def stacked_by_week(weeks: list[str], counts: dict[str, list[int]]) -> Chart:
    """A bar per week, stacked by category (each category keeps its colour)."""
    totals = [sum(column) for column in zip(*counts.values())] or [0]
    top = max(max(totals), 1)
    step = max(1, -(-top // 4))
    chart = Chart(WIDTH, HEIGHT, y_ticks=[(_y(v / (step * 4)), str(v)) for v in range(0, step * 5, step)],
                  x_ticks=[(_x(i, len(weeks)), w) for i, w in enumerate(weeks)])
    slot = (WIDTH - LEFT - RIGHT) / max(len(weeks), 1)
    stacked = [0] * len(weeks)
    for n, (name, column) in enumerate(counts.items()):
        colour = PALETTE[n % len(PALETTE)]
        chart.legend.append((colour, name))
        for i, cases in enumerate(column):
            if cases:
                bottom, top_y = _y(stacked[i] / (step * 4)), _y((stacked[i] + cases) / (step * 4))
                chart.bars.append(Bar(_x(i, len(weeks)) - slot * 0.35, top_y, slot * 0.7, bottom - top_y, colour,
                                      f"{name} {weeks[i]}: {cases}"))
                stacked[i] += cases
    return chart
