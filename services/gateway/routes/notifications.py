"""Notifications routes: class rosters, the delivery log, consent and survey links and
answers, and teachers' surveys."""

from __future__ import annotations

from typing import Any

from marshmallow import fields, validate

from services.contracts.common import Strict
from services.contracts.notifications import (
    LANGUAGES,
    ClaimConsents,
    ConsentAnswer,
    ConsentPage,
    ConsentProgress,
    ConsentProgressQuery,
    ConsentReminder,
    Message,
    NotificationsQuery,
    Roster,
    RosterSummary,
    RosterUpload,
    SurveyAnswer,
    SurveyListQuery,
    SurveyPage,
    SurveyQuery,
)
from services.gateway.routing import Call, route

ROSTER = "/v1/schools/<school_id>/rosters/<label>"
MAX_ROSTER_BYTES = 1 << 20


class ConsentQuery(Strict):
    lang = fields.String(load_default="zh-CN", validate=validate.OneOf(LANGUAGES))


@route("PUT", ROSTER, roles=("school",), tag="rosters", body=RosterUpload, response=Roster,
       content_types=("application/json", "text/csv"), max_body=MAX_ROSTER_BYTES)
def put_roster(call: Call) -> Any:
    """Replace one class's roster (JSON or UTF-8 CSV); any bad row refuses the whole upload.

    CSV: one row per guardian; columns pupil, pupil_ref, guardian, relation, phone, email,
    wechat_openid, language, channel, opt_out (or their Chinese names). Errors name
    `rows.<n>.<column>`, n counting rows after the header.
    """
    body = call.body
    if isinstance(body, dict) and body.get("content_type") == "text/csv":
        upload = {"format": "csv", "text": body["text"]}
    else:
        upload = {"format": "json", "document": body}
    return call.rpc.notifications.put_roster(call.actor, call.path["school_id"],
                                             call.path["label"], upload)


@route("GET", ROSTER, roles=("school",), tag="rosters", response=Roster)
def get_roster(call: Call) -> Any:
    """One class's roster (own school only), guardians' contacts masked."""
    return call.rpc.notifications.get_roster(call.actor, call.path["school_id"],
                                             call.path["label"])


@route("GET", "/v1/schools/<school_id>/rosters", roles=("school",), tag="rosters",
       response=RosterSummary, many=True)
def list_rosters(call: Call) -> Any:
    """The school's class rosters: label, pupils, guardians, version."""
    return call.rpc.notifications.list_rosters(call.actor, call.path["school_id"])


@route("GET", "/v1/notifications", roles=("school",), tag="notifications",
       query=NotificationsQuery, response=Message, many=True)
def list_notifications(call: Call) -> Any:
    """The delivery log of the school's messages (`claim_id=` for one claim), masked."""
    return call.rpc.notifications.list_notifications(call.actor, call.request.args.to_dict())


@route("GET", "/v1/claims/<claim_id>/consents", roles=("school",), tag="consents",
       response=ClaimConsents)
def claim_consents(call: Call) -> Any:
    """Parents' consent for a claim: a summary and one line per pupil (contacts masked)."""
    return call.rpc.notifications.claim_consents(call.actor, call.path["claim_id"])


@route("POST", "/v1/claims/<claim_id>/consents/remind", roles=("school",), tag="consents",
       response=ConsentReminder, status=201, creates=True)
def remind_consents(call: Call) -> Any:
    """Send the consent request again to the guardians of pupils with no answer yet (201).

    The claim's own school, while the claim is confirmed and the trip has not started
    (409 `claim-cancelled`, `trip-started`); once per claim every 12 hours (429
    `consent-reminder-too-soon` with `Retry-After`); 409 `consent-nothing-to-remind` when
    every pupil has an answer. SMS and WeChat wait for the end of quiet hours (21:00-07:00
    Beijing time). A retry with the same `Idempotency-Key` answers the first reminder.
    """
    return call.rpc.notifications.remind_consents(call.actor, call.path["claim_id"],
                                                  call.request_key)


@route("GET", "/v1/consent-summaries", roles=("admin", "venue", "school"), tag="consents",
       query=ConsentProgressQuery, response=ConsentProgress, many=True)
def consent_summaries(call: Call) -> Any:
    """Consent progress `{pupils, yes, no, pending}` of up to 100 claims (`claim_ids=a,b`):
    counts only, no name or contact. A venue sees the claims on its sessions, a school its
    own; ids the caller may not see (or of claims never confirmed) are left out."""
    return call.rpc.notifications.consent_progress(call.actor, call.query["claim_ids"])


@route("GET", "/v1/consents/<token>", roles=None, tag="consents", query=ConsentQuery,
       response=ConsentPage)
def consent_page(call: Call) -> Any:
    """What a parent sees on opening a consent link: the trip and the answer so far."""
    return call.rpc.notifications.consent_page(call.path["token"], call.query["lang"])


@route("POST", "/v1/consents/<token>", roles=None, tag="consents", body=ConsentAnswer,
       response=ConsentPage, status=201)
def answer_consent(call: Call) -> Any:
    """Record a parent's yes or no (201); repeating the current answer records nothing (200).

    A retry with the same `Idempotency-Key` answers as the first attempt did and records
    nothing more. A link whose pupil left the class, or whose guardian was replaced, is
    refused (409 `consent-link-stale`).
    """
    result = call.rpc.notifications.answer_consent(call.path["token"], call.body,
                                                   call.request_key)
    return result, 201 if result.get("recorded") else 200


# -- surveys -----------------------------------------------------------------------------
@route("GET", "/v1/surveys/<token>", roles=None, tag="surveys", query=SurveyQuery,
       response=SurveyPage)
def survey_page(call: Call) -> Any:
    """What a parent sees on opening a survey link: the trip, the questions, their answer
    so far (in their language unless `lang` asks for another)."""
    return call.rpc.notifications.survey_page(call.path["token"], call.query["lang"])


@route("POST", "/v1/surveys/<token>", roles=None, tag="surveys", body=SurveyAnswer,
       response=SurveyPage, status=201)
def answer_survey(call: Call) -> Any:
    """A parent's ratings (1-5 on content, organisation, safety) and optional comment (201);
    the same answer again records nothing (200). Changeable for 7 days after it was first
    given (then 409 `survey-answer-locked`); a retry with the same `Idempotency-Key`
    records nothing more. Contacts in the comment are masked before it is stored. The
    answer comes back in the guardian's language."""
    result = call.rpc.notifications.answer_survey(call.path["token"], call.body,
                                                  call.request_key)
    return result, 201 if result.get("recorded") else 200


@route("GET", "/v1/surveys", roles=("school",), tag="surveys", query=SurveyListQuery,
       response=SurveyPage, many=True)
def list_surveys(call: Call) -> Any:
    """The school's trip surveys for the signed-in teacher, newest first, with their own
    answer; `state=open` (default) lists those they may still answer or change."""
    return call.rpc.notifications.list_surveys(call.actor, call.request.args.to_dict())


@route("GET", "/v1/surveys/teacher/<trip_id>", roles=("school",), tag="surveys",
       query=SurveyQuery, response=SurveyPage)
def teacher_survey(call: Call) -> Any:
    """One trip's survey (the claim or tutor-visit id) for the signed-in teacher."""
    return call.rpc.notifications.teacher_survey(call.actor, call.path["trip_id"],
                                                 call.query["lang"])


@route("POST", "/v1/surveys/teacher/<trip_id>", roles=("school",), tag="surveys",
       body=SurveyAnswer, response=SurveyPage, status=201, creates=True)
def answer_teacher_survey(call: Call) -> Any:
    """The signed-in teacher's answer about a trip of their school (201; the same answer
    again: 200), changeable for 7 days."""
    result = call.rpc.notifications.answer_teacher_survey(
        call.actor, call.path["trip_id"], call.body, call.request_key)
    return result, 201 if result.get("recorded") else 200
