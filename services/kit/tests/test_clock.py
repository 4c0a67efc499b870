from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from services.contracts.common import Instant, Strict
from services.kit import clock
from services.kit.boundary import load
from services.kit.envelope import new_envelope
from services.kit.errors import ValidationFailed


@pytest.fixture()
def fixed_clock():
    at = datetime(2031, 2, 3, 4, 5, 6, 7, tzinfo=UTC)
    clock.set_clock(lambda: at)
    yield at
    clock.set_clock(None)


def test_stamps_always_have_four_digit_years_and_read_back():
    for year in (1, 500, 999, 1000, 9999):
        when = datetime(year, 6, 5, 1, 2, 3, tzinfo=UTC)
        text = clock.stamp(when)
        assert text == f"{year:04d}-06-05T01:02:03.000000Z"
        assert clock.parse(text) == when


def test_times_without_a_utc_equivalent_are_a_value_error():
    with pytest.raises(ValueError):
        clock.parse("0001-01-01T00:00:00+08:00")
    with pytest.raises(ValueError):
        clock.stamp(datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-5))))
    with pytest.raises(ValueError):
        clock.parse("2026-01-01T00:00:00Z" + " " * 100)


class At(Strict):
    at = Instant(required=True)


@pytest.mark.parametrize("text", ["0500-06-05T10:00:00Z", "1969-12-31T23:59:59Z",
                                  "2201-01-01T00:00:00Z", "9999-12-31T23:00:00-05:00",
                                  "0001-01-01T00:00:00+08:00"])
def test_an_instant_outside_the_sane_years_is_a_field_error(text):
    with pytest.raises(ValidationFailed) as refused:
        load(At, {"at": text})
    assert set(refused.value.errors) == {"at"}


def test_an_instant_inside_them_loads_as_a_stamp():
    assert load(At, {"at": "2026-06-05T10:00:00+08:00"}) == {"at": "2026-06-05T02:00:00.000000Z"}
    assert load(At, {"at": "1970-01-01T00:00:00Z"})["at"] == "1970-01-01T00:00:00.000000Z"


def test_an_envelope_is_stamped_by_kit_clock(fixed_clock):
    envelope = new_envelope("venues.venue_registered", 1, {})
    assert envelope["occurred_at"] == clock.stamp(fixed_clock) == "2031-02-03T04:05:06.000007Z"
    given = datetime(2030, 1, 1, 8, tzinfo=timezone(timedelta(hours=8)))
    assert new_envelope("venues.venue_registered", 1, {},
                        occurred_at=given)["occurred_at"] == "2030-01-01T00:00:00.000000Z"


def test_expiry_follows_the_real_clock_not_the_moved_one(fixed_clock):
    clock.set_clock(lambda: datetime(2001, 1, 1, tzinfo=UTC))
    left = clock.expiry(timedelta(days=1)) - datetime.now(UTC)
    assert timedelta(hours=23) < left <= timedelta(days=1)
