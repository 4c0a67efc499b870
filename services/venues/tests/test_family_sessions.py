"""Family and teacher sessions: prices per person category and a household as the party."""

from __future__ import annotations

import pytest

from services.kit.errors import ValidationFailed
from services.venues.tests.helpers import publish


def test_family_prices_default_to_the_base_price(repo, venue):
    session = publish(repo, venue, audience="family", price_fen=2000,
                      prices_fen={"adult": 3000, "child": 1500}, max_people_per_booking=5,
                      max_seats_per_household=4, households_may_book_again=True)
    assert session["prices_fen"] == {"adult": 3000, "child": 1500, "student": 2000}
    assert session["max_seats_per_household"] == 4 and session["max_seats_per_school"] is None
    assert session["max_people_per_booking"] == 5 and session["households_may_book_again"]


def test_a_household_is_the_party_its_limit_holds(repo, venue):
    session = publish(repo, venue, audience="family", max_seats_per_household=4)
    sid = session["session_id"]
    assert repo.holds.hold(sid, "adm_1", "hh_abc", 3)["ok"]
    over = repo.holds.hold(sid, "adm_2", "hh_abc", 2)
    assert over["ok"] is False and over["reason"] == "over_school_limit"
    assert repo.holds.hold(sid, "adm_3", "hh_other", 4)["ok"]
    assert repo.holds.seats(sid)["per_school"] == {"hh_abc": 3, "hh_other": 4}


def test_teacher_sessions_exist_and_household_limits_are_for_families(repo, venue):
    assert publish(repo, venue, audience="teachers")["audience"] == "teachers"
    with pytest.raises(ValidationFailed) as refused:
        publish(repo, venue, audience="students", max_seats_per_household=2)
    assert "max_seats_per_household" in refused.value.errors
    with pytest.raises(ValidationFailed) as school_limit:
        publish(repo, venue, audience="family", max_seats_per_school=2)
    assert "max_seats_per_school" in school_limit.value.errors
