"""Satisfaction surveys, answered: a guardian through their link, a teacher in the console.

- One answer per respondent per trip: a guardian (per pupil, as their link names them) or
  a signed-in member of the school's staff (by user id). `_id` survey|kind|respondent.
- New answers are taken while the survey is open (`closes_at`, KEPU_SURVEY_DAYS after it
  opened); an answer may be changed for CHANGE_DAYS (7) after it was first given, then
  it is final (409 `survey-answer-locked`). Repeating the current answer records nothing.
- Contacts written in a comment are masked before it is stored (masking.mask_comment).
- Each first answer and each change is one write carrying its event
  (`notifications.survey_answered` / `notifications.survey_changed`): ratings, revision,
  an opaque respondent id; never the comment.
- An `Idempotency-Key` binds the revision its first attempt wrote: a retry answers as that
  attempt did and records nothing more.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from services.contracts.notifications import QUESTIONS
from services.kit import clock
from services.kit.actor import Actor
from services.kit.errors import Conflict, NotFound
from services.kit.outbox import add_events, event, with_events
from services.kit.request_keys import fingerprint
from services.notifications import survey_links
from services.notifications.access import own_school, require_school
from services.notifications.delivery_log import decode_cursor, encode_cursor
from services.notifications.masking import mask_comment, mask_name
from services.notifications.repository import NotificationsRepository
from services.notifications.surveys import CHANGE_DAYS, title, trip_data, when
from services.notifications.templates import language_of

QUESTION_TEXT = {
    "zh-CN": {"content": "活动内容是否充实、有收获？", "organisation": "组织安排是否有序？",
              "safety": "安全措施是否到位？"},
    "en": {"content": "Was the content worthwhile?", "organisation": "Was it well organised?",
           "safety": "Was it safe?"},
}


# -- views -------------------------------------------------------------------------------
def questions(language: str) -> list[dict[str, str]]:
    return [{"key": q, "text": QUESTION_TEXT[language][q]} for q in QUESTIONS]


def trip_view(survey: dict[str, Any], language: str) -> dict[str, Any]:
    return {"kind": survey["trip_kind"], "title": title(survey, language),
            "venue_name": survey.get("venue_name"),
            "school_name": survey.get("school_name") or None,
            "when": when(survey, language), "category": survey.get("category")}


def given(answer: dict[str, Any] | None) -> dict[str, Any] | None:
    if answer is None:
        return None
    return {"ratings": answer["ratings"], "comment": answer.get("comment"),
            "answered_at": answer["answered_at"],
            "first_answered_at": answer["first_answered_at"],
            "changeable_until": answer["changeable_until"], "revision": answer["revision"]}


def is_open(survey: dict[str, Any], answer: dict[str, Any] | None, now: str) -> bool:
    """Whether this respondent may still answer (or change their answer)."""
    if answer is None:
        return now < survey["closes_at"]
    return now < answer["changeable_until"]


def view(survey: dict[str, Any], respondent: str, answer: dict[str, Any] | None,
         language: str, pupil: str | None = None, recorded: bool | None = None
         ) -> dict[str, Any]:
    page = {"survey_id": survey["_id"], "respondent": respondent, "language": language,
            "trip": trip_view(survey, language), "pupil": pupil,
            "questions": questions(language), "answer": given(answer),
            "closes_at": survey["closes_at"],
            "open": is_open(survey, answer, clock.stamp())}
    if recorded is not None:
        page["recorded"] = recorded
    return page


# -- answering ---------------------------------------------------------------------------
class Respondent:
    """Who answers: `kind` guardian or teacher, `who` their stable id (guardian id, user
    id), `public_id` what events say instead."""

    def __init__(self, secret: str, kind: str, who: str) -> None:
        self.kind = kind
        self.who = who
        self.public_id = survey_links.respondent_id(secret, kind, who)

    def answer_id(self, survey_id: str) -> str:
        return f"{survey_id}|{self.kind}|{self.who}"


def _closed_or_locked(survey: dict[str, Any], existing: dict[str, Any] | None,
                      now: str) -> None:
    if existing is None and now >= survey["closes_at"]:
        raise Conflict("this survey has closed", code="survey-closed")
    if existing is not None and now >= existing["changeable_until"]:
        raise Conflict(f"an answer can be changed for {CHANGE_DAYS} days after it was "
                       "given; this one is final", code="survey-answer-locked")


def record(repo: NotificationsRepository, survey: dict[str, Any], respondent: Respondent,
           payload: dict[str, Any], request_key: str | None = None
           ) -> tuple[dict[str, Any], bool]:
    """Store an answer (or its change); (the answer now, whether this call recorded it)."""
    answer_id = respondent.answer_id(survey["_id"])
    existing = repo.survey_answer(answer_id)
    revision = (existing["revision"] if existing else 0) + 1
    target = f"{answer_id}#{revision}"
    ratings = {q: payload["ratings"][q] for q in QUESTIONS}
    comment = mask_comment(payload["comment"]).strip() if payload.get("comment") else ""
    sent = fingerprint(ratings, comment)
    if request_key and existing is not None and repo.request_keys.bound(
            "survey", answer_id, request_key) not in (None, target):
        repo.request_keys.bind("survey", answer_id, request_key, target, sent)  # same body?
        return existing, True  # a retry: its revision was written
    now = clock.stamp()
    _closed_or_locked(survey, existing, now)
    if request_key:
        repo.request_keys.bind("survey", answer_id, request_key, target, sent)
    if existing is not None and existing["ratings"] == ratings \
            and (existing.get("comment") or "") == comment:
        return existing, False
    first = existing["first_answered_at"] if existing else now
    fields = {"ratings": ratings, "comment": comment or None, "answered_at": now,
              "revision": revision, "request_key": request_key}
    data = {**trip_data(survey), "respondent_kind": respondent.kind,
            "respondent_id": respondent.public_id, "ratings": ratings,
            "commented": bool(comment), "answered_at": now, "first_answered_at": first,
            "revision": revision}
    if existing is None:
        doc = {"_id": answer_id, "survey_id": survey["_id"], "school_id": survey["school_id"],
               "respondent_kind": respondent.kind, "respondent": respondent.who,
               "first_answered_at": now,
               "changeable_until": clock.stamp(clock.parse(now) + timedelta(days=CHANGE_DAYS)),
               **fields}
        if not repo.add_survey_answer(with_events(
                doc, event("notifications.survey_answered", data))):
            raise Conflict("another answer was recorded at the same moment; reload and "
                           "retry", code="survey-race")
        return doc, True
    changed = repo.change_survey_answer(answer_id, existing["revision"], add_events(
        {"$set": fields},
        event("notifications.survey_changed", {**data, "previous": existing["ratings"]})))
    if changed is None:
        raise Conflict("another answer was recorded at the same moment; reload and retry",
                       code="survey-race")
    return changed, True


def _survey(repo: NotificationsRepository, survey_id: str) -> dict[str, Any]:
    survey = repo.survey(survey_id)
    if survey is None:
        raise NotFound("no survey for this trip", code="survey-not-found")
    return survey


# -- guardians, through their link -------------------------------------------------------
def _granted(repo: NotificationsRepository, secret: str, token: str
             ) -> tuple[dict[str, Any], dict[str, Any], Respondent]:
    grant = survey_links.verify(secret, token)
    survey = _survey(repo, grant["survey_id"])
    return grant, survey, Respondent(secret, "guardian", grant["guardian_id"])


def _pupil_name(repo: NotificationsRepository, survey: dict[str, Any],
                pupil_id: str) -> str | None:
    for roster in repo.rosters_of(survey["school_id"], survey.get("labels") or []):
        for pupil in roster["pupils"]:
            if pupil["pupil_id"] == pupil_id:
                return mask_name(pupil["name"])
    return None


def guardian_page(repo: NotificationsRepository, secret: str, token: str,
                  language: str | None = None) -> dict[str, Any]:
    """What a guardian sees on opening the link: in their language unless they ask."""
    grant, survey, respondent = _granted(repo, secret, token)
    answer = repo.survey_answer(respondent.answer_id(survey["_id"]))
    return view(survey, "guardian", answer, language_of(language or grant["language"]),
                _pupil_name(repo, survey, grant["pupil_id"]))


def guardian_answer(repo: NotificationsRepository, secret: str, token: str,
                    payload: dict[str, Any], request_key: str | None = None,
                    language: str | None = None) -> dict[str, Any]:
    grant, survey, respondent = _granted(repo, secret, token)
    answer, recorded = record(repo, survey, respondent, payload, request_key)
    return view(survey, "guardian", answer, language_of(language or grant["language"]),
                _pupil_name(repo, survey, grant["pupil_id"]), recorded=recorded)


# -- teachers, signed in -----------------------------------------------------------------
def _teacher(repo: NotificationsRepository, secret: str, actor: Actor, survey_id: str
             ) -> tuple[dict[str, Any], Respondent]:
    survey = _survey(repo, survey_id)
    require_school(actor, survey["school_id"], "surveys")
    return survey, Respondent(secret, "teacher", actor.sub)


def teacher_page(repo: NotificationsRepository, secret: str, actor: Actor, survey_id: str,
                 language: str | None = None) -> dict[str, Any]:
    survey, respondent = _teacher(repo, secret, actor, survey_id)
    answer = repo.survey_answer(respondent.answer_id(survey_id))
    return view(survey, "teacher", answer, language_of(language))


def teacher_answer(repo: NotificationsRepository, secret: str, actor: Actor, survey_id: str,
                   payload: dict[str, Any], request_key: str | None = None,
                   language: str | None = None) -> dict[str, Any]:
    survey, respondent = _teacher(repo, secret, actor, survey_id)
    answer, recorded = record(repo, survey, respondent, payload, request_key)
    return view(survey, "teacher", answer, language_of(language), recorded=recorded)


def staff_list(repo: NotificationsRepository, actor: Actor, query: dict[str, Any]
               ) -> dict[str, Any]:
    """The school's surveys for the signed-in teacher, newest first, each with their own
    answer; `state=open` (the default) keeps those they may still answer or change."""
    school_id = own_school(actor, "surveys")
    language = language_of(query.get("lang"))
    open_only = query.get("state", "open") == "open"
    flt: dict[str, Any] = {"school_id": school_id}
    if open_only:
        flt["closes_at"] = {"$gt": clock.stamp(clock.now() - timedelta(days=CHANGE_DAYS))}
    after = decode_cursor(query["cursor"]) if query.get("cursor") else None
    docs, next_key = repo.surveys(flt, after, int(query.get("limit") or 50))
    mine = repo.survey_answers_by([d["_id"] for d in docs], "teacher", actor.sub)
    items = [view(d, "teacher", mine.get(d["_id"]), language) for d in docs]
    if open_only:  # a page may hold fewer than `limit`: the cursor goes on
        items = [item for item in items if item["open"]]
    return {"items": items, "next_cursor": encode_cursor(next_key) if next_key else None}
