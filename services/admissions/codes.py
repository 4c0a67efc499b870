"""One-time codes: proving a guardian holds a mainland mobile before any booking.

One document per household (the keyed digest of the number, never the number):

    {code_digest, code_expires_at, attempts, locked_until, sent, window_until, last_sent_at}

- A code lasts `code_ttl_s`; a new code replaces the old one.
- Each wrong answer is one conditional `$inc` of `attempts`; the `code_attempts`-th wrong
  answer also sets `locked_until`, and a locked number may neither answer nor ask for a
  code until then (429 with Retry-After).
- Sends are limited: one per `resend_gap_s`, and `resends` per lock period.
- Every change is a conditional update on what was read, so two racing requests cannot
  both slip under a limit. The code travels only in the SMS event (staged in the same
  write); what is stored is its digest.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError

from services.admissions.passes import household_of, open_pass, seal
from services.admissions.settings import AdmissionsSettings
from services.kit import clock
from services.kit.errors import TooManyRequests, ValidationFailed
from services.kit.outbox import add_events, event, with_events

VERIFIED = "verified"  # the pass's purpose


def _seconds_until(stamp: str) -> int:
    return max(1, int((clock.parse(stamp) - clock.now()).total_seconds()) + 1)


def _locked(until: str) -> TooManyRequests:
    return TooManyRequests("too many wrong codes: this number is locked for a while",
                           {"mobile": ["locked after too many wrong codes"]},
                           code="mobile-locked", retry_after=_seconds_until(until))


class OneTimeCodes:
    def __init__(self, codes: Collection, secret: str, settings: AdmissionsSettings) -> None:
        self.codes = codes
        self.secret = secret
        self.settings = settings

    def _digest(self, household: str, code: str) -> str:
        return hmac.new(self.secret.encode(), f"{household}:{code}".encode(),
                        hashlib.sha256).hexdigest()

    def send(self, mobile: str, language: str = "zh-CN") -> dict[str, Any]:
        """Make a new code and stage its SMS; refuses a locked number or one asking too often."""
        household = household_of(self.secret, mobile)
        now = clock.stamp()
        doc = self.codes.find_one({"_id": household}) or {}
        self._check_send(doc, now)
        code = f"{secrets.randbelow(10**6):06d}"
        expires = clock.later(self.settings.code_ttl_s)
        fresh_window = (doc.get("window_until") or "") <= now
        sets = {"code_digest": self._digest(household, code), "code_expires_at": expires,
                "attempts": 0, "last_sent_at": now,
                "sent": 1 if fresh_window else doc.get("sent", 0) + 1,
                "window_until": (clock.later(self.settings.lock_s) if fresh_window
                                 else doc["window_until"])}
        message = event("admissions.guardian_message", {
            "kind": "code", "key": f"code|{household}|{now}", "contact": mobile,
            "language": language, "code": code, "expires_at": expires})
        if not doc:
            try:
                self.codes.insert_one(with_events({"_id": household, "locked_until": "",
                                                   **sets}, message))
            except DuplicateKeyError:
                raise self._busy() from None
            return {"sent": True, "expires_at": expires}
        done = self.codes.find_one_and_update(
            {"_id": household, "last_sent_at": doc["last_sent_at"]},
            add_events({"$set": sets}, message))
        if done is None:
            raise self._busy()
        return {"sent": True, "expires_at": expires}

    def _busy(self) -> TooManyRequests:
        return TooManyRequests("a code was just sent to this number; wait before asking again",
                               {"mobile": ["a code was just sent"]}, code="code-resend-too-soon",
                               retry_after=self.settings.resend_gap_s)

    def _check_send(self, doc: dict[str, Any], now: str) -> None:
        if not doc:
            return
        if (doc.get("locked_until") or "") > now:
            raise _locked(doc["locked_until"])
        if clock.later(-self.settings.resend_gap_s) < doc["last_sent_at"]:
            raise self._busy()
        if (doc.get("window_until") or "") > now and doc.get("sent", 0) >= self.settings.resends:
            raise TooManyRequests("too many codes sent to this number; try again later",
                                  {"mobile": ["too many codes sent"]}, code="code-resend-limit",
                                  retry_after=_seconds_until(doc["window_until"]))

    def verify(self, mobile: str, code: str) -> dict[str, Any]:
        """A verification pass for a right code; a wrong one counts toward the lock."""
        household = household_of(self.secret, mobile)
        now = clock.stamp()
        doc = self.codes.find_one({"_id": household})
        wrong = ValidationFailed("the code is wrong or has expired",
                                 {"code": ["wrong or expired"]}, code="code-wrong")
        if doc is not None and (doc.get("locked_until") or "") > now:
            raise _locked(doc["locked_until"])
        if doc is None or not doc.get("code_digest"):
            raise wrong
        if doc["code_expires_at"] <= now:
            raise wrong
        if hmac.compare_digest(doc["code_digest"], self._digest(household, code)):
            # used once: a second answer with the same code finds no code
            used = self.codes.find_one_and_update(
                {"_id": household, "code_digest": doc["code_digest"]},
                {"$set": {"code_digest": None, "attempts": 0}})
            if used is None:
                raise wrong
            token = seal(self.secret, VERIFIED, {"m": mobile}, self.settings.pass_ttl_s)
            return {"verification": token, "expires_at": clock.later(self.settings.pass_ttl_s)}
        self._count_wrong(household, doc)
        raise wrong

    def _count_wrong(self, household: str, doc: dict[str, Any]) -> None:
        attempts = doc.get("attempts", 0) + 1
        sets: dict[str, Any] = {"attempts": attempts}
        if attempts >= self.settings.code_attempts:
            sets.update(locked_until=clock.later(self.settings.lock_s), code_digest=None)
        done = self.codes.find_one_and_update(
            {"_id": household, "attempts": doc.get("attempts", 0),
             "code_digest": doc["code_digest"]}, {"$set": sets})
        if done is None:  # another answer counted first: count this one on what is there now
            fresh = self.codes.find_one({"_id": household})
            if fresh and fresh.get("code_digest"):
                self._count_wrong(household, fresh)
            return
        if attempts >= self.settings.code_attempts:
            raise _locked(sets["locked_until"])

    def mobile_of(self, verification: Any) -> str:
        """The verified mobile a pass carries (Forbidden if forged or expired)."""
        return open_pass(self.secret, VERIFIED, verification)["m"]
