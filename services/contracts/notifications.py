"""Notifications: rosters, consent, surveys and delivery (events and RPC payloads).

A roster is one class of one school: its pupils and their guardians' contacts. The same
`GuardianInput` checks a JSON roster and each row of a CSV one, so both name the same
fields the same way.

Events (for monitoring): `notifications.consent_answered`, `notifications.survey_opened`,
`notifications.survey_answered` and `notifications.survey_changed`. None carries a name, a
contact or a comment: respondents are opaque ids.

RPC for other services: `class_pupils(school_id, labels) -> {label: [pupil_id, ...]}`,
the pupil ids of the current rosters of those classes (booking's per-pupil attendance);
labels match after `contracts.common.class_label_key` (`五年级（2）班` is `五年级(2)班`),
each answer key is the label as asked, and a class without a roster answers `[]`.
"""

from __future__ import annotations

import re
from typing import Any

from marshmallow import (
    ValidationError,
    fields,
    pre_load,
    validate,
    validates_schema,
)

from services.contracts.common import (
    EventData,
    Instant,
    Strict,
    Whole,
)
from services.contracts.registry import event

CHANNELS = ("email", "sms", "wechat")
LANGUAGES = ("zh-CN", "en")
NOTICE_KINDS = ("confirmed", "cancelled", "rescheduled", "reminder", "consent_reminder")
ACCOUNT_KINDS = ("invitation", "password_reset")  # identity's links, to one person
MESSAGE_KINDS = (*NOTICE_KINDS, "survey", *ACCOUNT_KINDS)
TRIP_KINDS = ("session", "tutor_visit")
RESPONDENT_KINDS = ("guardian", "teacher")
QUESTIONS = ("content", "organisation", "safety")  # each rated 1-5
COMMENT_MAX = 500
MESSAGE_STATUSES = ("queued", "sent", "failed", "suppressed", "deferred")
ANSWERS = ("yes", "no")
CONTACT_OF = {"email": "email", "sms": "phone", "wechat": "wechat_openid"}

MAX_PUPILS = 200
MAX_GUARDIANS = 4

_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_SEPARATORS = re.compile(r"[\s\-()（）]")
_OPENID = re.compile(r"^[A-Za-z0-9_-]{6,64}$")


def normalize_mobile(raw: str) -> str | None:
    """A mainland mobile number as 11 digits, or None if it is not one.

    Accepts what people type: spaces, dashes, brackets and a +86 / 0086 / 86 prefix.
    """
    digits = _SEPARATORS.sub("", raw)
    for prefix in ("+86", "0086", "86"):
        if digits.startswith(prefix) and len(digits) == 11 + len(prefix):
            digits = digits[len(prefix):]
            break
    return digits if _MOBILE.match(digits) else None


class MainlandMobile(fields.String):
    """A mainland China mobile number (11 digits, 1[3-9]…), stored normalised."""

    default_error_messages = {
        "invalid_mobile": "not a mainland mobile number (11 digits starting with 13-19)",
    }

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        number = normalize_mobile(text)
        if number is None:
            raise self.make_error("invalid_mobile")
        return number


def _blank_to_none(data: Any, names: tuple[str, ...]) -> Any:
    if not isinstance(data, dict):
        return data
    out = dict(data)
    for name in names:
        value = out.get(name)
        if isinstance(value, str):
            value = value.strip()
            out[name] = value or None
    return out


class GuardianInput(Strict):
    """One guardian of a pupil: who, how to reach them, in which language, on which channel.

    `channel` defaults to the first of sms, email, wechat the guardian has a contact for;
    `opt_out` lists channels the guardian refuses (a message then goes on the next one).
    """

    name = fields.String(required=True, validate=validate.Length(min=1, max=50))
    relation = fields.String(load_default=None, allow_none=True,
                             validate=validate.Length(max=20))
    phone = MainlandMobile(load_default=None, allow_none=True)
    email = fields.Email(load_default=None, allow_none=True, validate=validate.Length(max=254))
    wechat_openid = fields.String(load_default=None, allow_none=True, validate=validate.Regexp(
        _OPENID, error="not a WeChat openid (6-64 letters, digits, _ or -)"))
    language = fields.String(load_default="zh-CN", validate=validate.OneOf(LANGUAGES))
    channel = fields.String(load_default=None, allow_none=True,
                            validate=validate.OneOf(CHANNELS))
    opt_out = fields.List(fields.String(validate=validate.OneOf(CHANNELS)), load_default=list)

    @pre_load
    def _blanks(self, data: Any, **kwargs: Any) -> Any:
        data = _blank_to_none(data, ("relation", "phone", "email", "wechat_openid", "channel"))
        if isinstance(data, dict) and data.get("language") in ("", None):
            data.pop("language", None)
        return data

    @validates_schema
    def _reachable(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not any(data.get(CONTACT_OF[c]) for c in CHANNELS):
            raise ValidationError("a guardian needs a phone, an email or a wechat_openid",
                                  field_name="phone")
        channel = data.get("channel")
        if channel and not data.get(CONTACT_OF[channel]):
            raise ValidationError(f"channel {channel} needs a {CONTACT_OF[channel]}",
                                  field_name="channel")


class PupilInput(Strict):
    """A pupil; `ref` (e.g. the student number 学号) tells apart two pupils of one name."""

    name = fields.String(required=True, validate=validate.Length(min=1, max=50))
    ref = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=32))
    guardians = fields.List(fields.Nested(GuardianInput), required=True,
                            validate=validate.Length(min=1, max=MAX_GUARDIANS))

    @pre_load
    def _blanks(self, data: Any, **kwargs: Any) -> Any:
        return _blank_to_none(data, ("ref",))


class RosterUpload(Strict):
    """A whole class roster as JSON; it replaces the class's previous roster."""

    pupils = fields.List(fields.Nested(PupilInput), required=True,
                         validate=validate.Length(min=1, max=MAX_PUPILS))

    @validates_schema(skip_on_field_errors=False)
    def _distinct(self, data: dict[str, Any], **kwargs: Any) -> None:
        seen: dict[tuple[str, str | None], int] = {}
        errors: dict[int, dict[str, list[str]]] = {}
        for index, pupil in enumerate(data.get("pupils") or []):
            if not isinstance(pupil, dict) or not pupil.get("name"):
                continue
            key = (pupil["name"], pupil.get("ref"))
            if key in seen:
                errors[index] = {"name": [f"the same pupil as pupils.{seen[key]}; give each a "
                                          f"distinct ref (student number)"]}
            seen.setdefault(key, index)
        if errors:
            raise ValidationError(errors, field_name="pupils")


# -- answers -----------------------------------------------------------------------------
class GuardianView(Strict):
    """A guardian as listings show them: every contact masked."""

    guardian_id = fields.String(required=True)
    name = fields.String(required=True)
    relation = fields.String(allow_none=True)
    phone = fields.String(allow_none=True)
    email = fields.String(allow_none=True)
    wechat_openid = fields.String(allow_none=True)
    language = fields.String(required=True)
    channel = fields.String(required=True)
    opt_out = fields.List(fields.String(), required=True)


class PupilView(Strict):
    pupil_id = fields.String(required=True)
    name = fields.String(required=True)
    ref = fields.String(allow_none=True)
    guardians = fields.List(fields.Nested(GuardianView), required=True)


class Roster(Strict):
    school_id = fields.String(required=True)
    label = fields.String(required=True)
    pupils = fields.List(fields.Nested(PupilView), required=True)
    pupil_count = Whole(required=True)
    guardian_count = Whole(required=True)
    version = Whole(required=True)
    updated_at = Instant(required=True)
    notices_queued = Whole()  # on upload: trip notices for guardians new to a trip


class RosterSummary(Strict):
    label = fields.String(required=True)
    pupil_count = Whole(required=True)
    guardian_count = Whole(required=True)
    version = Whole(required=True)
    updated_at = Instant(required=True)


class NotificationsQuery(Strict):
    claim_id = fields.String(load_default=None, validate=validate.Length(min=1, max=64))
    status = fields.String(load_default=None, validate=validate.OneOf(MESSAGE_STATUSES))
    limit = Whole(load_default=50, validate=validate.Range(min=1, max=200))
    cursor = fields.String(load_default=None, validate=validate.Length(max=200))


class Message(Strict):
    """One message of the delivery log; `recipient` is always masked."""

    message_id = fields.String(required=True)
    claim_id = fields.String(allow_none=True)  # None for a tutor visit's survey
    visit_id = fields.String(allow_none=True)
    survey_id = fields.String(allow_none=True)  # a survey link's trip
    session_id = fields.String(allow_none=True)
    kind = fields.String(required=True, validate=validate.OneOf(MESSAGE_KINDS))
    template = fields.String(required=True)
    label = fields.String(required=True)
    pupil_id = fields.String(required=True)
    guardian_id = fields.String(required=True)
    channel = fields.String(allow_none=True)
    recipient = fields.String(allow_none=True)
    status = fields.String(required=True, validate=validate.OneOf(MESSAGE_STATUSES))
    attempts = Whole(required=True)
    provider_id = fields.String(allow_none=True)
    error = fields.String(allow_none=True)
    due_at = Instant(allow_none=True)
    created_at = Instant(required=True)
    sent_at = Instant(allow_none=True)


class ConsentAnswer(Strict):
    """What a guardian sends from the consent link."""

    answer = fields.String(required=True, validate=validate.OneOf(ANSWERS))
    guardian_name = fields.String(load_default=None, allow_none=True,
                                  validate=validate.Length(max=50))
    note = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=300))


class TripView(Strict):
    title = fields.String(required=True)
    venue_name = fields.String(required=True)
    venue_address = fields.String(required=True)
    starts_at = Instant(required=True)
    ends_at = Instant(required=True)
    timezone = fields.String(required=True)
    local_time = fields.String(required=True)
    what_to_bring = fields.String(allow_none=True)
    price_fen = Whole(required=True)


class ConsentPage(Strict):
    """What the consent link shows: the trip, the pupil (name masked) and the answer so far."""

    claim_id = fields.String(required=True)
    claim_status = fields.String(required=True)
    school_name = fields.String(required=True)
    label = fields.String(required=True)
    pupil = fields.String(required=True)
    trip = fields.Nested(TripView, required=True)
    answer = fields.String(allow_none=True)
    answered_at = Instant(allow_none=True)
    expires_at = Instant(required=True)
    recorded = fields.Boolean()


class ConsentItem(Strict):
    pupil_id = fields.String(required=True)
    pupil = fields.String(required=True)
    label = fields.String(required=True)
    answer = fields.String(allow_none=True)
    answered_at = Instant(allow_none=True)
    answered_by = fields.String(allow_none=True)
    changes = Whole(required=True)
    guardians = fields.List(fields.Dict(), required=True)  # {name, relation, channel, contact}


class ConsentSummary(Strict):
    pupils = Whole(required=True)
    yes = Whole(required=True)
    no = Whole(required=True)
    pending = Whole(required=True)


class ClaimConsents(Strict):
    claim_id = fields.String(required=True)
    claim_status = fields.String(required=True)
    summary = fields.Nested(ConsentSummary, required=True)
    items = fields.List(fields.Nested(ConsentItem), required=True)
    labels_without_roster = fields.List(fields.String(), required=True)


class ConsentReminder(Strict):
    """`POST /v1/claims/{claim_id}/consents/remind`: the consent request sent again to the
    guardians of pupils with no answer yet (once per claim every 12 hours)."""

    claim_id = fields.String(required=True)
    reminder_id = fields.String(required=True)
    reminded_at = Instant(required=True)
    next_at = Instant(required=True)  # the earliest moment the next reminder may go
    pupils = Whole(required=True)  # pupils without an answer, whose guardians are reminded
    messages = Whole(required=True)  # one per guardian
    deferred = Whole(required=True)  # held by quiet hours (SMS, WeChat) until the morning
    suppressed = Whole(required=True)  # no channel left for that guardian


class ConsentProgressQuery(Strict):
    """`GET /v1/consent-summaries?claim_ids=a,b`: up to 100 claim ids, comma-separated."""

    claim_ids = fields.String(required=True, validate=validate.Length(min=1, max=4000))


class ConsentProgress(Strict):
    """A claim's consent counts, without names or contacts (what a venue may see)."""

    claim_id = fields.String(required=True)
    claim_status = fields.String(required=True)
    summary = fields.Nested(ConsentSummary, required=True)


# -- surveys -----------------------------------------------------------------------------
class Ratings(Strict):
    """1 (poor) to 5 (excellent) on each fixed question."""

    content = Whole(required=True, validate=validate.Range(min=1, max=5))
    organisation = Whole(required=True, validate=validate.Range(min=1, max=5))
    safety = Whole(required=True, validate=validate.Range(min=1, max=5))


class SurveyAnswer(Strict):
    """A guardian's (from the link) or a teacher's (signed in) answer about one trip.

    Contacts written into `comment` (mobile numbers, e-mail addresses) are masked before
    it is stored."""

    ratings = fields.Nested(Ratings, required=True)
    comment = fields.String(load_default=None, allow_none=True,
                            validate=validate.Length(max=COMMENT_MAX))


class SurveyQuery(Strict):
    lang = fields.String(load_default=None, validate=validate.OneOf(LANGUAGES))


class SurveyListQuery(Strict):
    """`GET /v1/surveys`: the school's surveys for its teachers, newest first."""

    state = fields.String(load_default="open", validate=validate.OneOf(("open", "all")))
    lang = fields.String(load_default=None, validate=validate.OneOf(LANGUAGES))
    limit = Whole(load_default=50, validate=validate.Range(min=1, max=200))
    cursor = fields.String(load_default=None, validate=validate.Length(max=200))


class SurveyTrip(Strict):
    kind = fields.String(required=True, validate=validate.OneOf(TRIP_KINDS))
    title = fields.String(required=True)
    venue_name = fields.String(allow_none=True)
    school_name = fields.String(allow_none=True)
    when = fields.String(required=True)  # in the reader's language and the trip's zone
    category = fields.String(allow_none=True)


class Question(Strict):
    key = fields.String(required=True)
    text = fields.String(required=True)


class GivenAnswer(Strict):
    ratings = fields.Nested(Ratings, required=True)
    comment = fields.String(allow_none=True)  # as stored: contacts masked
    answered_at = Instant(required=True)
    first_answered_at = Instant(required=True)
    changeable_until = Instant(required=True)
    revision = Whole(required=True)


class SurveyPage(Strict):
    """What a survey link (or a teacher's survey) shows: the trip, the questions, the answer
    so far; `recorded` after an answer says whether it changed anything."""

    survey_id = fields.String(required=True)
    respondent = fields.String(required=True, validate=validate.OneOf(RESPONDENT_KINDS))
    language = fields.String(required=True)
    trip = fields.Nested(SurveyTrip, required=True)
    pupil = fields.String(allow_none=True)  # the pupil's name, masked (guardians only)
    questions = fields.List(fields.Nested(Question), required=True)
    answer = fields.Nested(GivenAnswer, allow_none=True)
    closes_at = Instant(required=True)
    open = fields.Boolean(required=True)
    recorded = fields.Boolean()


# -- events ------------------------------------------------------------------------------
class RatingsData(EventData):
    content = Whole(required=True)
    organisation = Whole(required=True)
    safety = Whole(required=True)


class SurveyTripData(EventData):
    """Which trip a survey is about: a claim on a session, or a tutor visit."""

    survey_id = fields.String(required=True)
    trip_kind = fields.String(required=True, validate=validate.OneOf(TRIP_KINDS))
    claim_id = fields.String(allow_none=True)
    visit_id = fields.String(allow_none=True)
    session_id = fields.String(allow_none=True)
    venue_id = fields.String(allow_none=True)
    school_id = fields.String(required=True)
    district = fields.String(allow_none=True)
    district_id = fields.String(allow_none=True)
    term = fields.String(allow_none=True)
    category = fields.String(allow_none=True)


@event("notifications.survey_opened", 1)
class SurveyOpened(SurveyTripData):
    """Survey links went to `guardians_invited` guardians (a running total: a later
    attendance correction may add some; keep the highest `revision`)."""

    guardians_invited = Whole(required=True)
    teachers_invited = Whole(required=True)
    opened_at = Instant(required=True)
    closes_at = Instant(required=True)
    revision = Whole(required=True)


@event("notifications.survey_answered", 1)
class SurveyAnswered(SurveyTripData):
    """A respondent's first answer. `respondent_id` is opaque (no name, no contact);
    the comment never travels, only whether there is one."""

    respondent_kind = fields.String(required=True, validate=validate.OneOf(RESPONDENT_KINDS))
    respondent_id = fields.String(required=True)
    ratings = fields.Nested(RatingsData, required=True)
    commented = fields.Boolean(required=True)
    answered_at = Instant(required=True)
    first_answered_at = Instant(required=True)
    revision = Whole(required=True)


@event("notifications.survey_changed", 1)
class SurveyChanged(SurveyAnswered):
    """The same respondent changed their answer (within 7 days of the first): the ratings
    replace those of every lower `revision`; `previous` are the ones replaced."""

    previous = fields.Nested(RatingsData, required=True)


@event("notifications.consent_answered", 1)
class ConsentAnswered(EventData):
    """A guardian said yes or no for a pupil's trip; `seq` counts the pupil's answers on
    the claim (the highest is the answer)."""

    claim_id = fields.String(required=True)
    school_id = fields.String(required=True)
    session_id = fields.String(allow_none=True)
    venue_id = fields.String(allow_none=True)
    pupil_id = fields.String(required=True)
    label = fields.String(required=True)
    answer = fields.String(required=True, validate=validate.OneOf(ANSWERS))
    seq = Whole(required=True)
    answered_at = Instant(required=True)
