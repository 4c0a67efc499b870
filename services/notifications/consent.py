"""Consent: a signed, expiring link per pupil and claim, and the answers given through it.

The link carries a JWT (HS256) with its own audience and purpose, signed with a key derived
from KEPU_JWT_SECRET, so neither kind of token passes for the other: a login token is not
a consent link, and a consent link cannot call the API. It expires when the trip starts.

A link is for one pupil and the one contact it was sent to (a keyed digest of it, never the
contact itself: a JWT's payload is readable). It answers only while the current roster
still has that pupil, with that contact among the pupil's guardians: a pupil taken off the
class, or a guardian replaced, leaves old links stale (409 `consent-link-stale`).

Answers are append-only: each one is a new record numbered per pupil (`seq`), the latest
is the answer; repeating the current answer records nothing. Each record carries its
`notifications.consent_answered` event (for monitoring) in the same write. A unique `_id` of
(claim, pupil, seq) makes two simultaneous answers impossible to interleave.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from typing import Any

import jwt

from services.contracts.common import class_label_key
from services.kit import clock
from services.kit.actor import Actor
from services.kit.errors import Conflict, Forbidden, NotFound
from services.kit.outbox import event, with_events
from services.kit.request_keys import fingerprint
from services.notifications.access import require_school
from services.notifications.guardians import choose_channel
from services.notifications.masking import mask_contact, mask_name
from services.notifications.repository import NotificationsRepository
from services.notifications.templates import local_time

AUDIENCE = "kepu:consent"
PURPOSE = "consent"
ISSUER = "kepu"


def _key(secret: str) -> bytes:
    return hmac.new(secret.encode(), b"kepu consent links", hashlib.sha256).digest()


def contact_digest(secret: str, contact: str) -> str:
    """A keyed digest of a contact: names it in a link without revealing it."""
    text = contact.strip().lower().encode()
    return hmac.new(_key(secret), b"contact|" + text, hashlib.sha256).hexdigest()[:24]


def sign(secret: str, claim_id: str, pupil_id: str, expires_at: str,
         contact: str | None = None) -> str:
    """The token of the link for `pupil_id` on `claim_id`, sent to `contact`, valid until
    `expires_at`."""
    expiry = clock.parse(expires_at)
    claims = {"iss": ISSUER, "aud": AUDIENCE, "purpose": PURPOSE, "claim_id": claim_id,
              "pupil_id": pupil_id, "exp": int(expiry.timestamp())}
    if contact:
        claims["contact"] = contact_digest(secret, contact)
    return jwt.encode(claims, _key(secret), algorithm="HS256")


def link(public_url: str, token: str) -> str:
    return f"{public_url}/v1/consents/{token}"


def verify(secret: str, token: str, now: datetime | None = None) -> dict[str, Any]:
    """The (claim_id, pupil_id, exp) a link grants, or Forbidden naming why not.

    Expiry is checked against `services.kit.clock`, so tests can move time.
    """
    try:
        claims = jwt.decode(token, _key(secret), algorithms=["HS256"], audience=AUDIENCE,
                            issuer=ISSUER, options={"verify_exp": False,
                                                    "require": ["exp", "aud", "iss"]})
    except jwt.PyJWTError:
        raise Forbidden("this consent link is not valid (it was changed or is not a Kepu "
                        "link)", {"token": ["invalid signature or format"]},
                        code="consent-link-invalid") from None
    if claims.get("purpose") != PURPOSE or not claims.get("claim_id") \
            or not claims.get("pupil_id"):
        raise Forbidden("this is not a consent link", {"token": ["not a consent link"]},
                        code="consent-link-invalid")
    moment = now or clock.now()
    if moment.timestamp() >= int(claims["exp"]):
        raise Forbidden("this consent link has expired", {"token": ["expired"]},
                        code="consent-link-expired")
    expires = datetime.fromtimestamp(int(claims["exp"]), tz=UTC)
    return {"claim_id": claims["claim_id"], "pupil_id": claims["pupil_id"],
            "contact": claims.get("contact"), "expires_at": clock.stamp(expires)}


def record_id(claim_id: str, pupil_id: str, seq: int) -> str:
    return f"{claim_id}|{pupil_id}|{seq:04d}"


def current(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The latest answer per pupil, with how many times it changed."""
    latest: dict[str, dict[str, Any]] = {}
    for record in sorted(records, key=lambda r: (r["pupil_id"], r["seq"])):
        latest[record["pupil_id"]] = {**record, "changes": record["seq"] - 1}
    return latest


def summary(pupil_ids: list[str], answers: dict[str, dict[str, Any]]) -> dict[str, int]:
    yes = sum(1 for p in pupil_ids if answers.get(p, {}).get("answer") == "yes")
    no = sum(1 for p in pupil_ids if answers.get(p, {}).get("answer") == "no")
    return {"pupils": len(pupil_ids), "yes": yes, "no": no, "pending": len(pupil_ids) - yes - no}


# -- reading and answering -----------------------------------------------------------------
def _pupils(repo: NotificationsRepository, claim: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The pupils of a claim's classes (by id), each with its class label."""
    found: dict[str, dict[str, Any]] = {}
    for roster in repo.rosters_of(claim["school_id"], claim["labels"]):
        for pupil in roster["pupils"]:
            found[pupil["pupil_id"]] = {**pupil, "label": roster["label"]}
    return found


def trip_view(trip: dict[str, Any], language: str) -> dict[str, Any]:
    return {
        "title": trip["title"], "venue_name": trip["venue_name"],
        "venue_address": trip["venue_address"], "starts_at": trip["starts_at"],
        "ends_at": trip["ends_at"], "timezone": trip["timezone"],
        "local_time": local_time(trip["starts_at"], trip["ends_at"], trip.get("timezone"),
                                 language),
        "what_to_bring": trip.get("what_to_bring"), "price_fen": trip.get("price_fen") or 0,
    }


def _granted_claim(repo: NotificationsRepository, secret: str,
                   token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    grant = verify(secret, token)
    claim = repo.claim(grant["claim_id"])
    if claim is None:
        raise NotFound("no trip for this consent link", code="claim-not-found")
    return grant, claim


def check_current(secret: str, grant: dict[str, Any],
                  pupils: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The pupil a link is for, as the claim's rosters have them now; Conflict if the link
    went stale: the pupil left the class, or its contact is no longer the pupil's guardian.

    Links signed before they named a contact are checked for the pupil only.
    """
    pupil = pupils.get(grant["pupil_id"])
    if pupil is None:
        raise Conflict("this consent link is no longer valid: the pupil is not on the class "
                       "roster any more; ask the school for a new link",
                       code="consent-link-stale")
    if grant.get("contact"):
        contacts = {contact_digest(secret, g[field]) for g in pupil["guardians"]
                    for field in ("phone", "email", "wechat_openid") if g.get(field)}
        if grant["contact"] not in contacts:
            raise Conflict("this consent link is no longer valid: it was sent to someone who "
                           "is no longer this pupil's guardian; ask the school for a new "
                           "link", code="consent-link-stale")
    return pupil


def page(repo: NotificationsRepository, secret: str, token: str,
         language: str = "zh-CN") -> dict[str, Any]:
    """What a guardian sees on opening the link."""
    grant, claim = _granted_claim(repo, secret, token)
    pupil = check_current(secret, grant, _pupils(repo, claim))
    return _page(repo, grant, claim, pupil, language)


def _page(repo: NotificationsRepository, grant: dict[str, Any], claim: dict[str, Any],
          pupil: dict[str, Any], language: str, recorded: bool | None = None
          ) -> dict[str, Any]:
    latest = current(repo.consent_records(claim["_id"], grant["pupil_id"])).get(
        grant["pupil_id"])
    view = {
        "claim_id": claim["_id"], "claim_status": claim["status"],
        "school_name": claim.get("school_name") or "",
        "label": pupil["label"], "pupil": mask_name(pupil["name"]),
        "trip": trip_view(claim["trip"], language),
        "answer": latest["answer"] if latest else None,
        "answered_at": latest["answered_at"] if latest else None,
        "expires_at": grant["expires_at"],
    }
    if recorded is not None:
        view["recorded"] = recorded
    return view


def _fingerprint(payload: dict[str, Any]) -> str:
    return fingerprint(payload["answer"], payload.get("guardian_name"), payload.get("note"))


def _replayed(repo: NotificationsRepository, records: list[dict[str, Any]], bound: str,
              request_key: str) -> bool:
    """Whether the answer bound to `request_key` was already recorded (a retry)."""
    if any(r.get("request_key") == request_key for r in records):
        return True
    earlier = repo.consent_record(bound)
    return earlier is not None and earlier.get("request_key") == request_key


def answer(repo: NotificationsRepository, secret: str, token: str,
           payload: dict[str, Any], request_key: str | None = None
           ) -> tuple[dict[str, Any], bool]:
    """Record a yes or no; (page, recorded). Repeating the current answer records nothing.

    A retry carrying the same `request_key` (Idempotency-Key) answers as the first attempt
    did and records nothing more, even if another answer was given in between.
    """
    grant, claim = _granted_claim(repo, secret, token)
    pupil = check_current(secret, grant, _pupils(repo, claim))
    if claim["status"] != "confirmed":
        raise Conflict("this trip was cancelled; there is nothing to consent to",
                       code="claim-cancelled")
    now = clock.stamp()
    if claim["trip"]["starts_at"] <= now:
        raise Conflict("this trip has already started", code="trip-started")
    pupil_id = grant["pupil_id"]
    records = repo.consent_records(claim["_id"], pupil_id)
    latest = current(records).get(pupil_id)
    seq = (latest["seq"] if latest else 0) + 1
    rid = record_id(claim["_id"], pupil_id, seq)
    if request_key:
        bound = repo.request_keys.bind("consent", f"{claim['_id']}|{pupil_id}", request_key,
                                       rid, _fingerprint(payload))
        if _replayed(repo, records, bound, request_key):
            return _page(repo, grant, claim, pupil, "zh-CN", recorded=True), True
    if latest is not None and latest["answer"] == payload["answer"]:
        return _page(repo, grant, claim, pupil, "zh-CN", recorded=False), False
    record = {"_id": rid, "claim_id": claim["_id"],
              "pupil_id": pupil_id, "school_id": claim["school_id"],
              "label": pupil["label"], "seq": seq,
              "answer": payload["answer"], "answered_at": now,
              "guardian_name": payload.get("guardian_name"), "note": payload.get("note"),
              "request_key": request_key}
    answered = event("notifications.consent_answered", {
        "claim_id": claim["_id"], "school_id": claim["school_id"],
        "session_id": claim.get("session_id"), "venue_id": claim["trip"].get("venue_id"),
        "pupil_id": pupil_id, "label": pupil["label"], "answer": payload["answer"],
        "seq": seq, "answered_at": now})
    if not repo.add_consent(with_events(record, answered)):
        raise Conflict("another answer was recorded at the same moment; reload and retry",
                       code="consent-race")
    return _page(repo, grant, claim, pupil, "zh-CN", recorded=True), True


def claim_consents(repo: NotificationsRepository, actor: Actor, claim_id: str
                   ) -> dict[str, Any]:
    """The school's view: a summary and one line per pupil, guardians' contacts masked."""
    claim = repo.claim(claim_id)
    if claim is None:
        raise NotFound("no confirmed claim with this id is known to notifications",
                       code="claim-not-found")
    require_school(actor, claim["school_id"], "consents")
    pupils = _pupils(repo, claim)
    answers = current(repo.consent_records(claim_id))
    items = []
    for pid, pupil in pupils.items():
        latest = answers.get(pid)
        items.append({
            "pupil_id": pid, "pupil": pupil["name"], "label": pupil["label"],
            "answer": latest["answer"] if latest else None,
            "answered_at": latest["answered_at"] if latest else None,
            "answered_by": latest.get("guardian_name") if latest else None,
            "changes": latest["changes"] if latest else 0,
            "guardians": [{"name": g["name"], "relation": g.get("relation"),
                           "channel": choose_channel(g)[0],
                           "contact": mask_contact(*choose_channel(g))}
                          for g in pupil["guardians"]],
        })
    for pid, latest in answers.items():  # answered, then removed from the roster
        if pid not in pupils:
            items.append({"pupil_id": pid, "pupil": "—", "label": latest.get("label", ""),
                          "answer": latest["answer"], "answered_at": latest["answered_at"],
                          "answered_by": latest.get("guardian_name"),
                          "changes": latest["changes"], "guardians": []})
    present = {class_label_key(p["label"]) for p in pupils.values()}
    return {"claim_id": claim_id, "claim_status": claim["status"],
            "summary": summary(list(pupils), answers), "items": items,
            "labels_without_roster": [label for label in claim["labels"]
                                      if class_label_key(label) not in present]}
