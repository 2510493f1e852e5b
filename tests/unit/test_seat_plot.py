"""The Billing page's seat plot: a step line of seats in use up to now, against the seats bought."""

from __future__ import annotations

from datetime import UTC, date, datetime

from services.checkout.pages.plots import HEIGHT, PAD, WIDTH, seat_plot

START, END = date(2026, 1, 1), date(2027, 1, 1)


def test_seats_in_use_step_up_and_hold_until_now() -> None:
    points = [{"at": "2026-01-01T00:00:00+00:00", "seats_in_use": 4},
              {"at": "2026-07-02T12:00:00+00:00", "seats_in_use": 8}]
    plot = seat_plot(points, 5, START, END, datetime(2026, 10, 1, tzinfo=UTC))
    assert plot is not None and plot.top == 8
    coords = [tuple(map(float, pair.split(","))) for pair in plot.used.split()]
    # Start at the term's left edge with 4; hold 4 until the change half-way; then 8 until now.
    assert coords[0] == (PAD, HEIGHT - PAD - (HEIGHT - 2 * PAD) * 4 / 8)
    assert coords[1][1] == coords[0][1] and coords[2][0] == coords[1][0] == 280.0
    assert coords[2][1] == PAD and coords[-1] == (round(PAD + (WIDTH - 2 * PAD) * 273 / 365, 1), PAD)
    assert plot.bought_y == HEIGHT - PAD - (HEIGHT - 2 * PAD) * 5 / 8
    assert plot.description == ("Seats in use this term, from 4 to 8 now (at most 8), against 5 seats bought.")


def test_no_points_no_plot_and_nothing_drawn_past_the_term() -> None:
    assert seat_plot([], 5, START, END, datetime(2026, 3, 1, tzinfo=UTC)) is None
    plot = seat_plot([{"at": "2026-01-01T00:00:00+00:00", "seats_in_use": 0}], 0, START, END,
                     datetime(2028, 1, 1, tzinfo=UTC))
    assert plot is not None and plot.top == 1  # an empty namespace still draws an axis
    assert float(plot.used.split()[-1].split(",")[0]) == WIDTH - PAD
