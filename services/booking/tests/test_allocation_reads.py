"""The allocation as the API shows it: a school sees only its own claims' lines."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.booking.allocation_reads import allocation_view
from services.booking.tests.conftest import group, make_school, school_actor
from services.kit.actor import Actor
from services.kit.errors import NotFound


def claim(desk, school, session, *groups):
    return desk.claims.create(school_actor(school), {
        "session_id": session["session_id"], "groups": list(groups)})


@pytest.fixture()
def drawn(desk, repo, venues, frozen_clock):
    session = venues.add_session(capacity=40, policy="window",
                                 window_closes_in=timedelta(hours=1))
    first, second = make_school(repo, "甲", rural=True), make_school(repo, "乙")
    claims = [claim(desk, first, session, group("一班")),
              claim(desk, second, session, group("一班"))]
    return session, first, second, claims


def test_before_the_window_closes_there_is_nothing_drawn(repo, drawn):
    session, first, _second, _claims = drawn
    view = allocation_view(repo, school_actor(first), session["session_id"])
    assert view["state"] == "open" and view["seed"] is None and view["items"] == []
    assert view["rules"][0] == "priority_school"


def test_a_school_sees_only_its_own_line_and_the_venue_all(desk, repo, drawn, frozen_clock):
    session, first, second, claims = drawn
    frozen_clock["now"] += timedelta(hours=2)
    assert desk.windows.allocate_due() == 1
    mine = allocation_view(repo, school_actor(second), session["session_id"])
    assert mine["claims"] == 2 and mine["reproduced"] is True and mine["seed"]
    assert [i["claim_id"] for i in mine["items"]] == [claims[1]["_id"]]
    line = mine["items"][0]
    assert (line["rank"], line["outcome"]) == (2, "waitlisted")
    assert line["reason"].startswith("ranked 2 of 2: not a priority school")
    venue = allocation_view(repo, Actor("usr_v", "venue", "ven_1"), session["session_id"])
    assert [i["school_id"] for i in venue["items"]] == [first["school_id"],
                                                       second["school_id"]]
    assert venue["items"][0]["outcome"] == "confirmed"


def test_others_read_it_as_not_found(repo, drawn):
    session, *_ = drawn
    for stranger in (Actor("usr_s", "school", "sch_other"), Actor("usr_v", "venue", "ven_9"),
                     Actor("usr_f", "finance", "dis_1")):
        with pytest.raises(NotFound):
            allocation_view(repo, stranger, session["session_id"])
    with pytest.raises(NotFound):
        allocation_view(repo, Actor("usr_a", "admin", None), "ses_none")
