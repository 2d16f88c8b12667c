"""Chart geometry: dated ticks, round value ticks, failures marked where they happened."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.wecom.status import fixtures
from wecom.status.charts import BOTTOM, LEFT, RIGHT, TOP, bar_chart, line_chart, time_ticks, value_ticks
from wecom.status.view import charts

START = datetime(2026, 11, 3, 6, 30, tzinfo=UTC)


def test_time_ticks_are_round_dates_inside_the_span() -> None:
    ticks = time_ticks(START, START + timedelta(days=30))
    assert [label for _, label in ticks] == ["Nov 09", "Nov 16", "Nov 23", "Nov 30"]  # Mondays
    assert all(START <= moment <= START + timedelta(days=30) for moment, _ in ticks)
    daily = time_ticks(START, START + timedelta(days=5))
    assert [label for _, label in daily] == ["Nov 04", "Nov 05", "Nov 06", "Nov 07", "Nov 08"]
    hours = time_ticks(START, START + timedelta(hours=10))
    assert [label for _, label in hours] == ["09:00", "12:00", "15:00"]
    overnight = time_ticks(START + timedelta(hours=12), START + timedelta(hours=24))
    assert [label for _, label in overnight] == ["21:00", "Nov 04", "03:00", "06:00"]
    assert time_ticks(START, START) == [(START, "Nov 03")]


def test_value_ticks_start_at_zero_and_reach_the_top_in_round_steps() -> None:
    assert value_ticks(1238) == [0, 500, 1000, 1500]
    assert value_ticks(42) == [0, 20, 40, 60]
    assert value_ticks(6) == [0, 2, 4, 6]
    assert value_ticks(0) == [0, 1]


def test_a_failed_run_is_a_mark_at_its_time_not_a_zero() -> None:
    points = [(START + timedelta(days=d), 1000.0 + d) for d in range(3)]
    failed_at = START + timedelta(days=4)
    chart = line_chart("Members", "members", points, [(failed_at, "task extract failed: 60020")])
    assert len(chart.dots) == 3 and all(TOP <= d.y < BOTTOM for d in chart.dots)
    (failure,) = chart.failures
    assert failure.x > max(d.x for d in chart.dots) and failure.x <= RIGHT
    assert failure.tip == "2026-11-07 06:30 UTC: failed: task extract failed: 60020"
    assert chart.legend == [
        ("line", "members in each loaded snapshot"),
        ("failure", "failed run (hover for the error)"),
    ]
    assert chart.line.count(",") == 3


def test_only_failures_still_make_a_chart_with_a_time_axis() -> None:
    chart = line_chart("Members", "members", [], [(START, "boom")])
    assert not chart.empty and chart.x_ticks and chart.dots == []
    assert line_chart("Members", "members", []).empty


def test_duration_bars_are_coloured_by_status_on_a_minutes_axis() -> None:
    bars = [
        (START, 300.0, "success", "5 min"),
        (START + timedelta(days=1), 60.0, "failed", "1 min"),
        (START + timedelta(days=2), 600.0, "partial", "10 min"),
    ]
    chart = bar_chart("Full sync duration", bars)
    assert chart.y_label == "minutes" and [t.label for t in chart.y_ticks] == ["0", "5", "10"]
    assert [b.tone for b in chart.bars] == ["ok", "bad", "warn"]
    assert chart.bars[2].y == TOP and chart.bars[1].y > chart.bars[0].y  # taller bar, smaller y
    assert all(b.x > LEFT and b.x + b.width < RIGHT for b in chart.bars)
    assert [tone for tone, _ in chart.legend] == ["ok", "warn", "bad"]


def test_a_companys_charts_share_one_time_axis() -> None:
    members, departments, durations = charts(fixtures.failing().history)
    assert members.x_ticks == departments.x_ticks == durations.x_ticks
    assert [f.x for f in members.failures] == [f.x for f in departments.failures]
