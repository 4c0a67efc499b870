"""Satisfaction surveys, opened: after a trip's attendance or a tutor visit's confirmation,
a survey per trip, a link to each guardian of the pupils who took part, and a survey in
the console for the school's teachers.

Who is asked: with attendance taken per pupil, the guardians of the pupils marked present
(a class given as a head count only: every guardian of that class); nobody for a no-show.
A tutor visit names no class, so its survey goes to the school's teachers alone (unless the
event names classes or pupils, which is then used like attendance).

One survey per trip (`_id` = the claim id or the visit id). A later attendance correction
reaches guardians not yet asked (messages dedup by survey, pupil, guardian and contact);
nobody is asked twice. Links go out on the guardian's channel and language, and wait out
quiet hours like any notice. Each change to the number of guardians asked is announced
(`notifications.survey_opened`, a running total with a revision) in the same write.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

from services.kit import clock
from services.kit.outbox import add_events, event
from services.kit.pages import sort_key
from services.notifications import consent, survey_links
from services.notifications.delivery import Delivery
from services.notifications.guardians import Recipient, choose_channel, recipients
from services.notifications.masking import mask_contact, mask_name
from services.notifications.messages import new_message
from services.notifications.repository import NotificationsRepository
from services.notifications.templates import (
    day_text,
    language_of,
    local_time,
    moment,
    render_message,
)

log = logging.getLogger("kepu.notifications.surveys")

CHANGE_DAYS = 7  # an answer may be changed for this long after it was first given
TRIP_FIELDS = ("survey_id", "trip_kind", "claim_id", "visit_id", "session_id", "venue_id",
               "school_id", "district", "district_id", "term", "category")


# -- the survey of one trip --------------------------------------------------------------
def from_attendance(data: dict[str, Any], claim: dict[str, Any] | None) -> dict[str, Any]:
    """The survey of a session trip, from `booking.visit_attended` and the claim record
    this service keeps (trip, classes, school name)."""
    trip = (claim or {}).get("trip") or {}
    groups = data.get("groups") or []
    labels = [g["label"] for g in groups] or (claim or {}).get("labels") or []
    return {
        "_id": data["claim_id"], "trip_kind": "session", "claim_id": data["claim_id"],
        "visit_id": None, "session_id": data["session_id"], "venue_id": data["venue_id"],
        "school_id": data["school_id"], "district": data.get("district") or None,
        "district_id": data.get("district_id"), "term": data.get("term"),
        "category": data.get("category") or trip.get("category"),
        "school_name": (claim or {}).get("school_name") or "",
        "title": trip.get("title") or "", "venue_name": trip.get("venue_name"),
        "starts_at": trip.get("starts_at"), "ends_at": trip.get("ends_at"),
        "timezone": trip.get("timezone"), "date": None, "subject": None, "tutor_name": None,
        "labels": labels, "teachers_invited": int(data.get("teachers_attended") or 0),
    }


def from_tutor_visit(data: dict[str, Any]) -> dict[str, Any]:
    """The survey of a tutor visit (请进来), from `booking.tutor_visit_confirmed`."""
    groups = data.get("groups") or []
    return {
        "_id": data["visit_id"], "trip_kind": "tutor_visit", "claim_id": None,
        "visit_id": data["visit_id"], "session_id": None, "venue_id": data.get("venue_id"),
        "school_id": data["school_id"], "district": data.get("district") or None,
        "district_id": data.get("district_id"), "term": data.get("term"),
        "category": data.get("category"), "school_name": data.get("school_name") or "",
        "title": "", "venue_name": data.get("venue_name"), "starts_at": None, "ends_at": None,
        "timezone": "Asia/Shanghai", "date": str(data["date"]),
        "subject": data.get("subject"), "tutor_name": data.get("tutor_name"),
        "labels": [g["label"] for g in groups], "teachers_invited": 1,
    }


def title(survey: dict[str, Any], language: str) -> str:
    if survey["trip_kind"] == "session":
        return survey.get("title") or ""
    subject = survey.get("subject") or ("科学" if language == "zh-CN" else "science")
    tutor = survey.get("tutor_name") or ""
    if language == "zh-CN":
        return f"科学辅导员进校：{subject}" + (f"（{tutor}）" if tutor else "")
    return f"Science tutor visit: {subject}" + (f" ({tutor})" if tutor else "")


def when(survey: dict[str, Any], language: str) -> str:
    if survey.get("starts_at") and survey.get("ends_at"):
        return local_time(survey["starts_at"], survey["ends_at"], survey.get("timezone"),
                          language)
    if survey.get("date"):
        return day_text(date.fromisoformat(survey["date"]), language)
    return ""


def trip_data(survey: dict[str, Any]) -> dict[str, Any]:
    """The trip as every survey event names it."""
    return {"survey_id": survey["_id"], **{f: survey.get(f) for f in TRIP_FIELDS[1:]}}


def link_expiry(survey: dict[str, Any]) -> str:
    """A link answers until the survey closes, and changes for CHANGE_DAYS after that."""
    return clock.stamp(clock.parse(survey["closes_at"]) + timedelta(days=CHANGE_DAYS))


# -- who is asked ------------------------------------------------------------------------
def participants(rosters: list[dict[str, Any]], groups: list[dict[str, Any]],
                 labels: list[str]) -> Iterator[Recipient]:
    """The (pupil, guardian) pairs to ask: per class, the pupils marked present when the
    class's attendance names pupils, else the whole class."""
    named = {g["label"]: set(g["pupil_ids"]) for g in groups
             if g.get("pupil_ids") is not None}
    for rcpt in recipients(rosters, labels):
        came = named.get(rcpt.label)
        if came is None or rcpt.pupil["pupil_id"] in came:
            yield rcpt


def compose(survey: dict[str, Any], rcpts: list[Recipient], *, settings: Any, secret: str,
            event_id: str | None = None) -> list[dict[str, Any]]:
    """One message per guardian asked, with their own link."""
    now = clock.now()
    expires = link_expiry(survey)
    docs = []
    for rcpt in rcpts:
        pupil, guardian = rcpt.pupil, rcpt.guardian
        channel, contact = choose_channel(guardian)
        to = consent.contact_digest(secret, contact) if contact else ""
        language = language_of(guardian.get("language"))
        token = survey_links.sign(secret, survey["_id"], pupil["pupil_id"],
                                  guardian["guardian_id"], expires, language)
        rendered = render_message("survey", language, {
            "guardian": guardian["name"], "pupil": pupil["name"],
            "school_name": survey.get("school_name") or "", "title": title(survey, language),
            "venue_name": survey.get("venue_name") or "", "when": when(survey, language),
            "closes": moment(survey["closes_at"], language),
            "survey_url": survey_links.link(settings.public_url, token)})
        docs.append(new_message(
            key=f"survey||{survey['_id']}|{pupil['pupil_id']}|{guardian['guardian_id']}|{to}",
            kind="survey", template=rendered.template, language=language, channel=channel,
            contact=contact, masked=mask_contact(channel, contact), subject=rendered.subject,
            text=rendered.text_for(channel or "email"), settings=settings, now=now,
            claim_id=survey.get("claim_id"), visit_id=survey.get("visit_id"),
            survey_id=survey["_id"], school_id=survey["school_id"],
            session_id=survey.get("session_id"), label=rcpt.label, pupil_id=pupil["pupil_id"],
            guardian_id=guardian["guardian_id"], guardian_name=mask_name(guardian["name"]),
            event_id=event_id))
    return docs


# -- opening -----------------------------------------------------------------------------
class Surveys:
    def __init__(self, delivery: Delivery, secret: str, days: int) -> None:
        self.delivery = delivery
        self.repo: NotificationsRepository = delivery.repo
        self.secret = secret
        self.days = days

    def visit_attended(self, data: dict[str, Any], event_id: str) -> dict[str, int]:
        if data.get("no_show") or not data.get("students_attended"):
            log.info("claim %s: nobody came; no survey", data["claim_id"])
            return {}
        survey = from_attendance(data, self.repo.claim(data["claim_id"]))
        return self.open(survey, data.get("groups") or [], event_id)

    def tutor_visit_confirmed(self, data: dict[str, Any], event_id: str) -> dict[str, int]:
        return self.open(from_tutor_visit(data), data.get("groups") or [], event_id)

    def open(self, fields: dict[str, Any], groups: list[dict[str, Any]], event_id: str
             ) -> dict[str, int]:
        """Record the survey (once), ask the guardians not yet asked, announce the count."""
        now = clock.stamp()
        closes = clock.stamp(clock.parse(now) + timedelta(days=self.days))
        survey = self.repo.add_survey({**fields, "opened_at": now, "closes_at": closes,
                                       "guardians_invited": 0, "revision": 0,
                                       "sort_key": sort_key(now, fields["_id"])})
        counts: dict[str, int] = {}
        if survey["closes_at"] > now and fields["labels"]:
            rosters = self.repo.rosters_of(survey["school_id"], fields["labels"])
            rcpts = list(participants(rosters, groups, fields["labels"]))
            docs = compose(survey, rcpts, settings=self.delivery.settings, secret=self.secret,
                           event_id=event_id)
            counts = self.delivery.store_and_send(docs)
        self.announce(survey)
        log.info("survey %s (%s): %s", survey["_id"], survey["trip_kind"], counts)
        return counts

    def announce(self, survey: dict[str, Any]) -> None:
        """Publish the number asked when it changed (or on opening), in the same write."""
        invited = self.repo.guardians_asked(survey["_id"])
        if survey["revision"] and invited == survey["guardians_invited"]:
            return
        revision = survey["revision"] + 1
        opened = event("notifications.survey_opened", {
            **trip_data(survey), "guardians_invited": invited,
            "teachers_invited": survey["teachers_invited"], "opened_at": survey["opened_at"],
            "closes_at": survey["closes_at"], "revision": revision})
        self.repo.update_survey(survey["_id"], survey["revision"], add_events(
            {"$set": {"guardians_invited": invited, "revision": revision,
                      "updated_at": clock.stamp()}}, opened))
