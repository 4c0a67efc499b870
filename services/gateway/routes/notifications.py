"""Notifications routes: class rosters, the delivery log, consent links and answers."""

from __future__ import annotations

from typing import Any

from marshmallow import fields, validate

from services.contracts.common import Strict
from services.contracts.notifications import (
    LANGUAGES,
    ClaimConsents,
    ConsentAnswer,
    ConsentPage,
    Message,
    NotificationsQuery,
    Roster,
    RosterSummary,
    RosterUpload,
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
