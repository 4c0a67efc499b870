"""Notification documents in MongoDB: rosters, claims as this service knows them, messages
and consent answers.

- `rosters`: one document per (school, class label) holding the whole class; replacing it
  is one write.
- `claims`: confirmed claims, recorded from `booking.claim_confirmed`, so session-level
  events (cancelled, rescheduled) and the reminder timer know which classes are on a trip.
  Each carries its last consent reminder (`consent_reminder`: id, when, `next_at`), taken
  by one conditional write (consent_reminders).
- `messages`: one per (notice, guardian), `dedup_key` unique; `due_at` + `lease_until`
  drive the delivery timer (`leased_by`: the token of the timer's last lease); `sort_key`
  (kit.pages: created_at|id) pages the delivery log.
- `consents`: append-only answers, `_id` (claim|pupil|seq).
- `surveys`: one per trip (claim or tutor visit), carrying `survey_opened` in its outbox.
- `survey_answers`: one per respondent per survey (`_id` survey|kind|respondent), changed
  in place under a revision check, carrying `survey_answered`/`survey_changed`.
- `request_keys`: the Idempotency-Keys of consent and survey answers (kit.request_keys),
  expiring.

`consents`, `surveys` and `survey_answers` carry outbox entries (kit.outbox): the event
and the record it announces are one write.
"""

from __future__ import annotations

import uuid
from typing import Any

from pymongo import ASCENDING, ReturnDocument, UpdateOne
from pymongo.errors import BulkWriteError, DuplicateKeyError

from services.contracts.common import class_label_key
from services.kit import clock, pages
from services.kit.errors import NotFound
from services.kit.mongo import Repository
from services.kit.request_keys import RequestKeys

DUPLICATE_KEY = 11000


WAITING = ("queued", "deferred")  # the only statuses a message with a `due_at` may have


class NotificationsRepository(Repository):
    outbox_collections = ("consents", "surveys", "survey_answers")

    def ensure_indexes(self) -> None:
        super().ensure_indexes()
        # a school's tens of rosters are sorted after the indexed read; nx-27017 answers from
        # single-field indexes only (kit/mongo.py, "nx-27017")
        self.db.rosters.create_index("school_id")
        self.db.claims.create_index("session_id")
        self.db.claims.create_index([("school_id", ASCENDING), ("status", ASCENDING)])
        self.db.claims.create_index([("reminder", ASCENDING), ("remind_at", ASCENDING)])
        self.db.messages.create_index("dedup_key", unique=True)
        self.db.messages.create_index([("claim_id", ASCENDING), ("sort_key", ASCENDING)])
        self.db.messages.create_index([("school_id", ASCENDING), ("sort_key", ASCENDING)])
        self.db.messages.create_index("due_at")  # set while a message waits (`lease_due`)
        self.db.consents.create_index("claim_id")
        self.db.messages.create_index("survey_id")
        self.db.surveys.create_index("school_id")
        self.db.surveys.create_index("sort_key")
        self.db.survey_answers.create_index("survey_id")
        self.request_keys.ensure_indexes()

    @property
    def request_keys(self) -> RequestKeys:
        return RequestKeys(self.db.request_keys)

    # -- rosters ---------------------------------------------------------------------------
    def replace_roster(self, document: dict[str, Any]) -> dict[str, Any]:
        """Store a whole roster in one write; the version counts replacements."""
        fields = {k: v for k, v in document.items() if k != "_id"}
        return self.db.rosters.find_one_and_update(
            {"_id": document["_id"]}, {"$set": fields, "$inc": {"version": 1}},
            upsert=True, return_document=ReturnDocument.AFTER)

    def roster(self, key: str) -> dict[str, Any]:
        doc = self.db.rosters.find_one({"_id": key})
        if doc is None:
            raise NotFound("no roster for this class", code="roster-not-found")
        return doc

    def rosters_of(self, school_id: str, labels: list[str] | None = None) -> list[dict[str, Any]]:
        """The school's rosters, or those of `labels` matched by `class_label_key` (a school
        has tens of classes: read by the indexed school, matched here)."""
        found = list(self.db.rosters.find({"school_id": school_id}).sort("label", ASCENDING))
        if labels is None:
            return found
        keys = {class_label_key(label) for label in labels}
        return [doc for doc in found if class_label_key(doc["label"]) in keys]

    def roster_label(self, school_id: str, label: str) -> str:
        """The label a class's roster is stored under: an existing roster's whose label
        matches `label` by `class_label_key`, else `label` itself."""
        same = self.rosters_of(school_id, [label])
        return same[0]["label"] if same else label

    # -- claims ----------------------------------------------------------------------------
    def add_claim(self, record: dict[str, Any]) -> dict[str, Any] | None:
        """Insert a claim record; None if one exists (the caller looks at it)."""
        try:
            self.db.claims.insert_one(record)
        except DuplicateKeyError:
            return None
        return record

    def claim(self, claim_id: str) -> dict[str, Any] | None:
        return self.db.claims.find_one({"_id": claim_id})

    def claims_on_session(self, session_id: str, status: str = "confirmed") -> list[dict]:
        return list(self.db.claims.find({"session_id": session_id, "status": status}))

    def active_claims_with_label(self, school_id: str, label: str, after: str) -> list[dict]:
        key = class_label_key(label)
        return [c for c in self.db.claims.find({"school_id": school_id, "status": "confirmed"})
                if key in {class_label_key(x) for x in c.get("labels", [])}
                and c["trip"]["starts_at"] > after]

    def update_claim(self, claim_id: str, fields: dict[str, Any],
                     expect: dict[str, Any] | None = None) -> dict[str, Any] | None:
        """Set `fields` if the record still matches `expect`; the record after, or None."""
        return self.db.claims.find_one_and_update(
            {"_id": claim_id, **(expect or {})},
            {"$set": {**fields, "updated_at": clock.stamp()}},
            return_document=ReturnDocument.AFTER)

    def claims_by_ids(self, claim_ids: list[str]) -> list[dict[str, Any]]:
        return list(self.db.claims.find({"_id": {"$in": list(claim_ids)}}))

    def take_consent_reminder(self, claim_id: str, slot: dict[str, Any], now: str
                              ) -> dict[str, Any] | None:
        """Record a consent reminder if the claim is confirmed and the last one's
        `next_at` has passed (or there was none); the record after, or None."""
        return self.db.claims.find_one_and_update(
            {"_id": claim_id, "status": "confirmed",
             "$or": [{"consent_reminder": {"$exists": False}},
                     {"consent_reminder.next_at": {"$lte": now}}]},
            {"$set": {"consent_reminder": slot, "updated_at": now}},
            return_document=ReturnDocument.AFTER)

    def reminders_due(self, now: str, limit: int = 50) -> list[dict[str, Any]]:
        return list(self.db.claims.find({"reminder": "pending", "remind_at": {"$lte": now}})
                    .sort("remind_at", ASCENDING).limit(limit))

    # -- messages --------------------------------------------------------------------------
    def add_messages(self, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Store new messages; those whose dedup key exists are skipped. Returns the stored."""
        if not docs:
            return []
        try:
            self.db.messages.insert_many(docs, ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(e.get("code") != DUPLICATE_KEY for e in errors):
                raise
            skipped = {e["index"] for e in errors}
            return [doc for i, doc in enumerate(docs) if i not in skipped]
        return docs

    def lease_due(self, now: str, until: str, limit: int) -> list[dict[str, Any]]:
        """Take up to `limit` messages due to be (re)tried, each under a lease.

        Three commands whatever the number: find the due ids, lease them all in one
        conditional update stamped with a token of this call, read back those carrying the
        token (another worker may have leased some in between; it keeps them).

        Only a waiting (queued or deferred) message has a `due_at`: every other outcome
        clears it in the same write, so the time range finds them from the `due_at` index,
        and a message settled meanwhile no longer matches the lease's conditions. The status
        is checked once more on the ids found. (kit/mongo.py, "nx-27017": a `$in` beside
        time ranges made the stand-in compare every message in Python, ~60 ms a poll with a
        few thousand messages; "no lease" is `""`, which it matches only by equality.)
        """
        due = {"due_at": {"$lte": now},
               "$and": [{"$or": [{"lease_until": ""}, {"lease_until": {"$lt": now}}]}]}
        ids = [ref["_id"] for ref in self.db.messages.find(due, {"_id": 1, "status": 1})
               .sort("due_at", ASCENDING).limit(limit) if ref.get("status") in WAITING]
        if not ids:
            return []
        token = uuid.uuid4().hex
        self.db.messages.update_many(
            {"_id": {"$in": ids}, **due},
            {"$set": {"status": "queued", "lease_until": until, "leased_by": token,
                      "updated_at": now}})
        # (kit/mongo.py, "nx-27017": `$in` is indexed on `_id` only; the token is checked here)
        taken = {doc["_id"]: doc for doc in self.db.messages.find({"_id": {"$in": ids}})
                 if doc.get("leased_by") == token}
        return [taken[i] for i in ids if i in taken]

    def settle_many(self, outcomes: list[Any]) -> None:
        """Record the outcomes of sends (or deferrals) in one write, dropping the leases.

        Each is a `delivery.Outcome`; only a message still queued is changed, so a late
        outcome cannot overwrite one withdrawn meanwhile.
        """
        if not outcomes:
            return
        now = clock.stamp()
        updates = []
        for outcome in outcomes:
            sets = {**outcome.fields, "lease_until": "", "updated_at": now}
            if outcome.attempt is not None and outcome.trial is not None:
                sets[f"tries.{outcome.attempt}"] = outcome.trial
            updates.append(UpdateOne({"_id": outcome.message_id, "status": "queued"},
                                     {"$set": sets}))
        self.db.messages.bulk_write(updates, ordered=False)

    def withdraw(self, claim_id: str, kinds: tuple[str, ...], reason: str) -> int:
        """Suppress a claim's messages of `kinds` still waiting (deferred, or queued and not
        being sent right now): news they carry went stale before it went out."""
        now = clock.stamp()
        result = self.db.messages.update_many(
            {"claim_id": claim_id, "kind": {"$in": list(kinds)},
             "status": {"$in": ["deferred", "queued"]}, "lease_until": {"$lt": now}},
            {"$set": {"status": "suppressed", "error": reason, "due_at": None,
                      "updated_at": now}})
        return result.modified_count

    def messages(self, query: dict[str, Any], after: str | None, limit: int
                 ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of messages in `sort_key` order and the key to continue after."""
        return pages.page(self.db.messages, query, limit, after, key="sort_key")

    def message(self, message_id: str) -> dict[str, Any] | None:
        return self.db.messages.find_one({"_id": message_id})

    # -- consents --------------------------------------------------------------------------
    def consent_records(self, claim_id: str, pupil_id: str | None = None) -> list[dict]:
        query: dict[str, Any] = {"claim_id": claim_id}
        if pupil_id is not None:
            query["pupil_id"] = pupil_id
        return list(self.db.consents.find(query, {"outbox": 0}))

    def consent_records_of(self, ids: list[str]) -> dict[str, list[dict[str, Any]]]:
        """The answers of several claims, by claim id."""
        found: dict[str, list[dict[str, Any]]] = {}
        for doc in self.db.consents.find({"claim_id": {"$in": list(ids)}}, {"outbox": 0}):
            found.setdefault(doc["claim_id"], []).append(doc)
        return found

    def consent_record(self, record_id: str) -> dict[str, Any] | None:
        return self.db.consents.find_one({"_id": record_id}, {"outbox": 0})

    def add_consent(self, record: dict[str, Any]) -> bool:
        try:
            self.db.consents.insert_one(record)
        except DuplicateKeyError:
            return False
        return True

    # -- surveys ---------------------------------------------------------------------------
    def add_survey(self, doc: dict[str, Any]) -> dict[str, Any]:
        """Insert a trip's survey; the one stored first if it exists (an event repeated, or
        an attendance correction)."""
        try:
            self.db.surveys.insert_one(doc)
            return doc
        except DuplicateKeyError:
            found = self.db.surveys.find_one({"_id": doc["_id"]})
            assert found is not None
            return found

    def survey(self, survey_id: str) -> dict[str, Any] | None:
        return self.db.surveys.find_one({"_id": survey_id}, {"outbox": 0})

    def update_survey(self, survey_id: str, revision: int, update: dict[str, Any]
                      ) -> dict[str, Any] | None:
        """Apply `update` if the survey is still at `revision`; the survey after, or None."""
        return self.db.surveys.find_one_and_update(
            {"_id": survey_id, "revision": revision}, update,
            return_document=ReturnDocument.AFTER)

    def guardians_asked(self, survey_id: str) -> int:
        """Survey messages with a channel to go on (sent, on their way, or failed)."""
        return sum(1 for m in self.db.messages.find({"survey_id": survey_id},
                                                    {"status": 1, "kind": 1})
                   if m.get("kind") == "survey" and m.get("status") != "suppressed")

    def surveys(self, query: dict[str, Any], after: str | None, limit: int
                ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of surveys, newest first, and the key to continue after."""
        return pages.page(self.db.surveys, query, limit, after, {"outbox": 0},
                          key="sort_key", newest_first=True)

    def survey_answer(self, answer_id: str) -> dict[str, Any] | None:
        return self.db.survey_answers.find_one({"_id": answer_id}, {"outbox": 0})

    def survey_answers_by(self, survey_ids: list[str], kind: str, who: str
                          ) -> dict[str, dict[str, Any]]:
        """The answers of one respondent to several surveys, by survey id."""
        ids = [f"{sid}|{kind}|{who}" for sid in survey_ids]
        return {doc["survey_id"]: doc
                for doc in self.db.survey_answers.find({"_id": {"$in": ids}}, {"outbox": 0})}

    def add_survey_answer(self, doc: dict[str, Any]) -> bool:
        try:
            self.db.survey_answers.insert_one(doc)
        except DuplicateKeyError:
            return False
        return True

    def change_survey_answer(self, answer_id: str, revision: int, update: dict[str, Any]
                             ) -> dict[str, Any] | None:
        return self.db.survey_answers.find_one_and_update(
            {"_id": answer_id, "revision": revision}, update,
            projection={"outbox": 0}, return_document=ReturnDocument.AFTER)
