"""Series: local dates and times to UTC, checked whole, published all or nothing."""

from __future__ import annotations

from datetime import date

import pytest

from services.contracts.venues import SessionDraft
from services.kit import clock
from services.kit.boundary import load
from services.kit.errors import ValidationFailed
from services.venues.series import check_occurrences, occurrences
from services.venues.tests.conftest import staff

DRAFT = {"title": "少年科学院 Junior academy", "category": "science", "audience": "students",
         "grades": [3, 6], "capacity": 40, "price_fen": 0, "claim_policy": "first_come"}


def draft(**overrides):
    return load(SessionDraft, {**DRAFT, **overrides})


def test_weekly_series_crosses_a_month_boundary_in_shanghai(now):
    # 07:00 in Shanghai is 23:00 UTC the day before: Thursday 1 October is 30 September in UTC.
    series = draft(starts_at="2026-09-30T07:00:00+08:00", ends_at="2026-09-30T08:30:00+08:00",
                   repeat={"weekly": {"weekdays": [3, 4], "until": "2026-10-08"}})
    found = occurrences(series, "Asia/Shanghai")
    assert [o.day for o in found] == [date(2026, 9, 30), date(2026, 10, 1), date(2026, 10, 7),
                                      date(2026, 10, 8)]
    assert [o.starts_at for o in found] == [
        "2026-09-29T23:00:00.000000Z", "2026-09-30T23:00:00.000000Z",
        "2026-10-06T23:00:00.000000Z", "2026-10-07T23:00:00.000000Z"]
    assert [o.ends_at for o in found][1] == "2026-10-01T00:30:00.000000Z"


def test_weekly_starts_on_the_first_matching_weekday(now):
    # starts_at is a Monday; only Saturdays are asked for
    series = draft(starts_at="2026-09-28T09:30:00+08:00", ends_at="2026-09-28T11:00:00+08:00",
                   repeat={"weekly": {"weekdays": [6], "until": "2026-10-17"}})
    assert [o.day for o in occurrences(series, "Asia/Shanghai")] == [
        date(2026, 10, 3), date(2026, 10, 10), date(2026, 10, 17)]


def test_wall_clock_time_is_kept_across_a_daylight_saving_change(now):
    series = draft(starts_at="2026-10-24T09:00:00+02:00", ends_at="2026-10-24T10:00:00+02:00",
                   repeat={"dates": ["2026-10-31", "2026-10-24"]})
    found = occurrences(series, "Europe/Berlin")
    assert [o.starts_at for o in found] == ["2026-10-24T07:00:00.000000Z",
                                            "2026-10-31T08:00:00.000000Z"]


def test_the_window_keeps_its_lead_time_for_every_occurrence(now):
    series = draft(starts_at="2026-10-10T09:00:00+08:00", ends_at="2026-10-10T11:00:00+08:00",
                   claim_policy="window", window_closes_at="2026-10-03T09:00:00+08:00",
                   repeat={"dates": ["2026-10-10", "2026-10-17"]})
    found = occurrences(series, "Asia/Shanghai")
    assert [o.window_closes_at for o in found] == ["2026-10-03T01:00:00.000000Z",
                                                   "2026-10-10T01:00:00.000000Z"]


def test_a_past_occurrence_refuses_the_whole_series_naming_it(now):
    series = draft(starts_at="2026-09-10T09:00:00+08:00", ends_at="2026-09-10T10:00:00+08:00",
                   repeat={"dates": ["2026-09-10", "2026-08-20", "2026-09-17"]})
    with pytest.raises(ValidationFailed) as caught:
        check_occurrences(series, occurrences(series, "Asia/Shanghai"), clock.now())
    assert list(caught.value.errors) == ["repeat.dates.1"]


def test_weekly_until_before_the_first_day_and_too_many_occurrences(now):
    before = draft(starts_at="2026-10-10T09:00:00+08:00", ends_at="2026-10-10T10:00:00+08:00",
                   repeat={"weekly": {"weekdays": [1], "until": "2026-10-01"}})
    with pytest.raises(ValidationFailed) as caught:
        occurrences(before, "Asia/Shanghai")
    assert list(caught.value.errors) == ["repeat.weekly.until"]
    daily = draft(starts_at="2026-10-10T09:00:00+08:00", ends_at="2026-10-10T10:00:00+08:00",
                  repeat={"weekly": {"weekdays": [1, 2, 3, 4, 5, 6, 7], "until": "2027-10-01"}})
    with pytest.raises(ValidationFailed) as caught:
        occurrences(daily, "Asia/Shanghai")
    assert list(caught.value.errors) == ["repeat.weekly.until"]


def test_repeat_needs_exactly_one_rule(now):
    with pytest.raises(ValidationFailed) as caught:
        draft(starts_at="2026-10-10T09:00:00+08:00", ends_at="2026-10-10T10:00:00+08:00",
              repeat={})
    assert "repeat" in caught.value.errors
    with pytest.raises(ValidationFailed) as caught:
        draft(starts_at="2026-10-10T09:00:00+08:00", ends_at="2026-10-10T10:00:00+08:00",
              repeat={"dates": ["2026-10-10", "2026-10-10"]})
    assert "repeat.dates" in caught.value.errors


def test_publishing_a_series_makes_every_session_visible_with_its_event(repo, venue):
    series = draft(starts_at="2026-09-30T07:00:00+08:00", ends_at="2026-09-30T08:30:00+08:00",
                   repeat={"weekly": {"weekdays": [3, 4], "until": "2026-10-08"}})
    answer = repo.sessions.publish(venue, series, staff(venue["_id"]))
    ids = [s["session_id"] for s in answer["sessions"]]
    assert len(ids) == 4 and all(s["series_id"] == answer["series_id"]
                                 for s in answer["sessions"])
    assert [s["session_id"] for s in repo.sessions.get_many(ids)] == ids
    record = repo.db.series.find_one({"_id": answer["series_id"]})
    assert record["state"] == "published" and record["outbox_pending"] == 4
    published = sorted(env["data"]["session_id"] for env in record["outbox"].values())
    assert published == sorted(ids)


def test_a_series_that_fails_half_way_leaves_nothing(repo, venue, monkeypatch):
    series = draft(starts_at="2026-09-30T07:00:00+08:00", ends_at="2026-09-30T08:30:00+08:00",
                   repeat={"dates": ["2026-10-01", "2026-10-02"]})

    def broken(*args, **kwargs):
        raise ConnectionError("database went away")

    monkeypatch.setattr(repo.series.series, "insert_one", broken)
    with pytest.raises(ConnectionError):
        repo.sessions.publish(venue, series, staff(venue["_id"]))
    assert repo.db.sessions.count_documents({}) == 0


def test_repair_finishes_a_committed_series_and_drops_debris(repo, venue, now):
    series = draft(starts_at="2026-09-30T07:00:00+08:00", ends_at="2026-09-30T08:30:00+08:00",
                   repeat={"dates": ["2026-10-01", "2026-10-02"]})
    monkey = repo.series._finish
    repo.series._finish = lambda series_id: None  # the process "dies" after the commit
    answer = repo.sessions.publish(venue, series, staff(venue["_id"]))
    repo.series._finish = monkey
    ids = [s["session_id"] for s in answer["sessions"]]
    assert repo.sessions.get_many(ids) == []
    repo.db.sessions.insert_one({"_id": "ses_debris", "series_id": "ser_never",
                                 "published": False, "created_at": clock.stamp()})
    assert repo.series.repair() == 0  # too recent to judge
    now.set(now.value.replace(hour=3))
    assert repo.series.repair() == 2
    assert len(repo.sessions.get_many(ids)) == 2
    assert repo.db.series.find_one({"_id": answer["series_id"]})["outbox_pending"] == 2
    assert repo.db.sessions.find_one({"_id": "ses_debris"}) is None
    assert repo.series.repair() == 0
