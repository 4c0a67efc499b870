from __future__ import annotations

import base64
import io
import threading
from datetime import date, timedelta

import pytest
from openpyxl import load_workbook

from services.admissions import arrivals, tickets, upkeep
from services.admissions.tests.conftest import NOW
from services.admissions.training import Training, register
from services.kit.actor import Actor
from services.kit.errors import Conflict, Forbidden, ValidationFailed

VENUE = Actor(sub="door-1", role="venue", org="ven_1")


def family(adults: int = 1, children: int = 1) -> dict:
    return {"adults": adults, "children": children, "child_names": [], "language": "zh-CN"}


def mobile(n: int) -> str:
    return f"139{n:08d}"


def book(desk, session: str, n: int, adults: int = 1, children: int = 1) -> dict:
    return desk.book_family(session, mobile(n), family(adults, children))


def test_a_burst_of_households_never_oversells_and_books_each_once(desk, venues, repo):
    venues.add("ses_burst", 40)
    results: list = []

    def household(n: int) -> None:
        for _ in range(2):  # every household tries twice at once
            try:
                results.append(book(desk, "ses_burst", n, 1, 1)["status"])
            except Conflict as refused:
                results.append(refused.code)

    threads = [threading.Thread(target=household, args=(n,)) for n in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    held = repo.db.bookings.count_documents({"status": "held"})
    assert held == 20 and venues.sessions["ses_burst"]["seats_left"] == 0
    assert repo.db.bookings.count_documents({"status": "waitlisted"}) == 10
    assert results.count("already-booked") == 30  # one standing booking per household


def test_held_then_confirmed_gets_a_ticket_and_its_sms(desk, venues, repo):
    venues.add("ses_1", 10)
    booking = book(desk, "ses_1", 1, adults=2, children=1)
    assert booking["status"] == "held" and booking["ticket_code"] is None
    assert booking["fee_fen"] == 2 * 3000 + 1500
    assert booking["mobile_masked"] == "139****0001"
    done = desk.confirm(booking["manage_token"])
    assert done["status"] == "confirmed" and tickets.read_code(done["ticket_code"])
    outbox = repo.db.bookings.find_one({"_id": booking["booking_id"]})["outbox"]
    kinds = sorted(env["type"] for env in outbox.values())
    assert kinds == ["admissions.booking_confirmed", "admissions.guardian_message"]
    confirmed = next(e for e in outbox.values() if e["type"] == "admissions.booking_confirmed")
    assert mobile(1) not in str(confirmed["data"])  # facts carry no number


def test_a_household_over_the_venue_limits_is_refused(desk, venues, repo):
    venues.add("ses_lim", 10, max_seats_per_party=3)
    with pytest.raises(ValidationFailed):
        book(desk, "ses_lim", 1, adults=4, children=3)  # over 6 per booking
    with pytest.raises(Conflict) as over:
        book(desk, "ses_lim", 1, adults=2, children=2)
    assert over.value.code == "over-household-limit"
    assert repo.db.bookings.count_documents({}) == 0  # nothing half-written


def test_a_venue_may_allow_more_than_one_booking_per_household(desk, venues):
    venues.add("ses_again", 10, households_may_book_again=True)
    book(desk, "ses_again", 1)
    assert book(desk, "ses_again", 1)["status"] == "held"


def test_an_unconfirmed_hold_expires_and_promotes_the_waitlist_in_order(desk, venues, now):
    venues.add("ses_x", 2)
    first = book(desk, "ses_x", 1, 1, 1)
    waiting = [book(desk, "ses_x", n, 1, 0) for n in (2, 3, 4)]
    assert [w["waitlist_position"] for w in waiting] == [1, 2, 3]
    now.set(NOW + timedelta(minutes=11))
    assert desk.expire_holds() == 1
    assert desk.document(first["booking_id"])["status"] == "expired"
    states = [desk.document(w["booking_id"])["status"] for w in waiting]
    assert states == ["confirmed", "confirmed", "waitlisted"]
    assert venues.sessions["ses_x"]["seats_left"] == 0


def test_a_cancellation_promotes_the_waitlist_and_frees_the_household(desk, venues):
    venues.add("ses_c", 2)
    first = book(desk, "ses_c", 1)
    desk.confirm(first["manage_token"])
    second = book(desk, "ses_c", 2, 1, 0)
    assert second["status"] == "waitlisted"
    cancelled = desk.cancel(desk.by_token(first["manage_token"]), "cancelled by the household")
    assert cancelled["status"] == "cancelled"
    assert desk.document(second["booking_id"])["status"] == "confirmed"
    assert book(desk, "ses_c", 1)["status"] == "waitlisted"  # may book again


def test_no_cancellation_after_the_cutoff(desk, venues, now):
    venues.add("ses_cut", 5)
    booking = book(desk, "ses_cut", 1)
    desk.confirm(booking["manage_token"])
    now.set(NOW + timedelta(days=8, hours=10))  # 14 hours before the start, cut-off 24
    with pytest.raises(Conflict) as late:
        desk.cancel(desk.by_token(booking["manage_token"]), "late")
    assert late.value.code == "past-cutoff"


def test_a_ticket_checked_in_twice_says_when_it_was_first(desk, venues, repo, now):
    venues.add("ses_door", 5)
    booking = desk.confirm(book(desk, "ses_door", 1, 2, 1)["manage_token"])
    with pytest.raises(ValidationFailed):  # a fee needs its method
        arrivals.check_in(repo.db.bookings, VENUE, "ven_1", booking["ticket_code"], None)
    first = arrivals.check_in(repo.db.bookings, VENUE, "ven_1",
                              tickets.PREFIX + booking["ticket_code"], "wechat_pay")
    assert first["repeated"] is False and first["paid"]["amount_fen"] == 7500
    now.set(NOW + timedelta(minutes=3))
    again = arrivals.check_in(repo.db.bookings, VENUE, "ven_1",
                              booking["ticket_code"].lower(), "cash")
    assert again["repeated"] is True and again["first_checked_in_at"] == first["checked_in_at"]
    report = arrivals.takings(repo.db.bookings, VENUE, "ven_1", date(2026, 7, 1), "json")
    assert report["total_fen"] == 7500 and report["by_method"] == {"wechat_pay": 7500}
    csv = arrivals.takings(repo.db.bookings, VENUE, "ven_1", date(2026, 7, 1), "csv")["text"]
    assert "75.00" in csv and mobile(1) not in csv
    xlsx = arrivals.takings(repo.db.bookings, VENUE, "ven_1", date(2026, 7, 1), "xlsx")
    book_ = load_workbook(io.BytesIO(base64.b64decode(xlsx["base64"])))
    assert list(book_["totals"].iter_rows(values_only=True))[1] == ("wechat_pay", 7500, "75.00")


def test_numbers_are_erased_days_after_the_session(desk, venues, repo, now, settings):
    venues.add("ses_old", 5)
    booking = book(desk, "ses_old", 1)
    now.set(NOW + timedelta(days=9 + settings.erase_days - 1))
    assert upkeep.erase_numbers(repo.db.bookings) == 0
    now.set(NOW + timedelta(days=10 + settings.erase_days))
    assert upkeep.erase_numbers(repo.db.bookings) == 1
    doc = desk.document(booking["booking_id"])
    assert doc["mobile"] is None and doc["mobile_masked"] == "139****0001"
    outbox = repo.db.bookings.find_one({"_id": booking["booking_id"]})["outbox"]
    assert "admissions.contact_erased" in [e["type"] for e in outbox.values()]


def test_a_reminder_goes_once_before_the_session(desk, venues, repo, now):
    venues.add("ses_rem", 5)
    booking = desk.confirm(book(desk, "ses_rem", 1)["manage_token"])
    assert upkeep.send_reminders(desk, 24) == 0
    now.set(NOW + timedelta(days=8, hours=10))
    assert upkeep.send_reminders(desk, 24) == 1
    assert upkeep.send_reminders(desk, 24) == 0
    outbox = repo.db.bookings.find_one({"_id": booking["booking_id"]})["outbox"]
    assert any(e["data"].get("kind") == "reminder" for e in outbox.values())


def test_school_staff_book_training_seats_and_the_venue_sees_the_register(desk, venues, repo):
    venues.add("ses_tr", 2, audience="teachers", max_seats_per_party=2)
    repo.learn_school({"school_id": "sch_1", "name": "实验小学"})
    staff = Actor(sub="t-1", role="school", org="sch_1")
    answer = Training(desk, repo.db.schools).book(staff, "ses_tr", [
        {"name": "王老师", "subject": "科学"}, {"name": "李老师"}, {"name": "王老师"}])
    states = [b["status"] for b in answer["bookings"]]
    assert states == ["confirmed", "confirmed", "refused"]
    listing = register(repo.db.bookings, VENUE, venues.get_session("ses_tr"), 50, None)
    assert {(r["attendee"], r["school_name"]) for r in listing["items"]} == {
        ("王老师", "实验小学"), ("李老师", "实验小学")}
    with pytest.raises(ValidationFailed):  # a family session is not for training bookings
        venues.add("ses_fam", 2)
        Training(desk, repo.db.schools).book(staff, "ses_fam", [{"name": "赵老师"}])


def test_a_booking_left_pending_by_a_crash_is_ended_and_its_hold_released(desk, venues, now):
    venues.add("ses_crash", 4)

    class Crash(Exception):
        pass

    real_hold = venues.hold

    def hold_then_crash(*args):
        real_hold(*args)
        raise Crash  # the hold was taken, the answer never came back

    venues.hold = hold_then_crash
    with pytest.raises(Crash):
        book(desk, "ses_crash", 1, 2, 0)
    venues.hold = real_hold
    assert venues.sessions["ses_crash"]["seats_left"] == 2
    now.set(NOW + timedelta(minutes=11))
    assert desk.expire_holds() == 1
    assert venues.sessions["ses_crash"]["seats_left"] == 4
    assert book(desk, "ses_crash", 1, 2, 0)["status"] == "held"  # the household may book again


def test_a_cancelled_session_ends_every_booking_and_tells_each_household(desk, venues, repo):
    venues.add("ses_gone", 1)
    first = desk.confirm(book(desk, "ses_gone", 1, 1, 0)["manage_token"])
    waiting = book(desk, "ses_gone", 2, 1, 0)
    assert desk.session_cancelled("ses_gone", "暴雨") == 2
    for booking in (first, waiting):
        doc = repo.db.bookings.find_one({"_id": booking["booking_id"]})
        assert doc["status"] == "cancelled"
        kinds = [e["data"].get("kind") for e in doc["outbox"].values()]
        assert "cancelled" in kinds


def test_another_venue_cannot_check_in_or_read_takings(desk, venues, repo):
    venues.add("ses_other", 5)
    booking = desk.confirm(book(desk, "ses_other", 1, 1, 0)["manage_token"])
    other = Actor(sub="door-2", role="venue", org="ven_2")
    with pytest.raises(Forbidden):
        arrivals.check_in(repo.db.bookings, other, "ven_1", booking["ticket_code"], "cash")
    with pytest.raises(Forbidden):
        arrivals.takings(repo.db.bookings, other, "ven_1", date(2026, 7, 1), "csv")
    admin = Actor(sub="ops", role="admin")
    assert arrivals.check_in(repo.db.bookings, admin, "ven_1", booking["ticket_code"],
                             "cash")["repeated"] is False
