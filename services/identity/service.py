"""The identity service's entrypoints: validate, call the domain, answer.

Public calls (no actor; the gateway passes the client's address for throttling and
audit): `login`, `refresh`, `logout`, `accept_invitation`, `request_password_reset`,
`reset_password`. Gateway plumbing (no actor, trusted like any service-to-service call):
`verify_api_key`, `record_requests`, `recent_cutoffs`. Everything else takes the caller
as a signed `actor` and verifies it first (`self.actors`: Forbidden if missing, forged or
expired). Creating calls take the caller's `request_key`.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from eventlet import tpool
from nameko.rpc import rpc
from nameko.timer import timer

import services.contracts  # noqa: F401 - registers every event type this process checks
from services.contracts.identity import (
    Acceptance,
    ApiKeyQuery,
    ApiKeyRequest,
    AuditEntry,
    AuditQuery,
    District,
    DistrictRegistration,
    Invitation,
    InvitationQuery,
    Login,
    Logout,
    MemberQuery,
    MintedToken,
    PasswordReset,
    PasswordResetRequest,
    Provision,
    Refresh,
    Switch,
    TokenPair,
)
from services.identity.passwords import Passwords
from services.identity.people import user_ids
from services.identity.repository import IdentityRepository
from services.kit import clock
from services.kit.actor import Actors
from services.kit.boundary import dump, load
from services.kit.context import LogContext
from services.kit.errors import ValidationFailed, validation_error
from services.kit.events import subscribe
from services.kit.health import Health
from services.kit.mongo import Store

log = logging.getLogger("kepu.identity")

Signed = dict[str, Any] | None  # an actor as it travels: kit.actor.sign
MAX_AUDIT_BATCH = 500


def _limit(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 200:
        raise validation_error("limit", "must be an integer from 1 to 200")
    return value


class ThreadedRepository(IdentityRepository):
    """The repository the service runs: password hashing on eventlet's OS thread pool."""

    def __init__(self, db: Any, settings: Any) -> None:
        super().__init__(db, settings, hasher=Passwords(offload=tpool.execute))


class IdentityService(Health):
    name = "identity"
    store = Store(ThreadedRepository)
    actors = Actors()
    log_context = LogContext()

    # -- signing in (public) ---------------------------------------------------------------
    @rpc
    def login(self, payload: dict[str, Any]) -> dict[str, Any]:
        data = load(Login, payload)
        pair = self.store.sessions.login(data["identifier"], data["password"], data["client"])
        return dump(TokenPair, pair)

    @rpc
    def refresh(self, payload: dict[str, Any]) -> dict[str, Any]:
        data = load(Refresh, payload)
        return dump(TokenPair, self.store.sessions.refresh(data["refresh_token"],
                                                           data["client"]))

    @rpc
    def logout(self, payload: dict[str, Any]) -> dict[str, Any]:
        data = load(Logout, payload)
        return self.store.sessions.logout(data["refresh_token"], data["everywhere"],
                                          data["client"])

    @rpc
    def accept_invitation(self, payload: dict[str, Any]) -> dict[str, Any]:
        data = load(Acceptance, payload)
        return self.store.invitations.accept(data, data["client"])

    @rpc
    def request_password_reset(self, payload: dict[str, Any]) -> dict[str, Any]:
        data = load(PasswordResetRequest, payload)
        return self.store.resets.request(data["identifier"], data["client"])

    @rpc
    def reset_password(self, payload: dict[str, Any]) -> dict[str, Any]:
        data = load(PasswordReset, payload)
        return self.store.resets.confirm(data["token"], data["password"], data["client"])

    # -- the signed-in person --------------------------------------------------------------
    @rpc
    def switch(self, payload: dict[str, Any], actor: Signed = None) -> dict[str, Any]:
        who = self.actors(actor)
        data = load(Switch, payload)
        return dump(TokenPair, self.store.sessions.switch(who, data["org_id"], data["role"],
                                                          data["client"]))

    @rpc
    def me(self, actor: Signed = None) -> dict[str, Any]:
        profile = self.store.sessions.me(self.actors(actor))
        profile["memberships"] = self.store.organisations.named(profile["memberships"])
        profile["acting"]["org_name"] = self.store.organisations.name_of(
            profile["acting"]["org_id"])
        return profile

    @rpc
    def people(self, ids: str, actor: Signed = None) -> dict[str, Any]:
        return self.store.people.names(self.actors(actor), user_ids(ids))

    # -- invitations and members -----------------------------------------------------------
    @rpc
    def invite(self, payload: dict[str, Any], actor: Signed = None,
               request_key: str | None = None) -> dict[str, Any]:
        who = self.actors(actor)
        return self.store.invitations.invite(load(Invitation, payload), who, request_key)

    @rpc
    def list_invitations(self, query: dict[str, Any], actor: Signed = None) -> dict[str, Any]:
        who = self.actors(actor)
        return self.store.invitations.list(load(InvitationQuery, query or {}), who)

    @rpc
    def resend_invitation(self, invitation_id: str, actor: Signed = None) -> dict[str, Any]:
        return self.store.invitations.resend(invitation_id, self.actors(actor))

    @rpc
    def revoke_invitation(self, invitation_id: str, actor: Signed = None) -> dict[str, Any]:
        return self.store.invitations.revoke(invitation_id, self.actors(actor))

    @rpc
    def list_members(self, query: dict[str, Any], actor: Signed = None) -> dict[str, Any]:
        who = self.actors(actor)
        return self.store.members.list(load(MemberQuery, query or {}), who)

    @rpc
    def remove_member(self, membership_id: str, actor: Signed = None) -> dict[str, Any]:
        return self.store.members.remove(membership_id, self.actors(actor))

    @rpc
    def set_user_status(self, user_id: str, status: str, actor: Signed = None
                        ) -> dict[str, Any]:
        who = self.actors(actor)
        if status not in ("active", "disabled"):
            raise validation_error("status", "must be active or disabled")
        return self.store.members.set_status(user_id, status, who)

    # -- operators (kepu user create-admin, kepu token, the demo) ---------------------------
    @rpc
    def provision(self, payload: dict[str, Any], actor: Signed = None) -> dict[str, Any]:
        who = self.actors(actor)
        return self.store.operators.provision(load(Provision, payload), who)

    @rpc
    def record_token(self, payload: dict[str, Any], actor: Signed = None) -> dict[str, Any]:
        who = self.actors(actor)
        return self.store.operators.record_token(load(MintedToken, payload), who)

    # -- districts -------------------------------------------------------------------------
    @rpc
    def register_district(self, payload: dict[str, Any], actor: Signed = None,
                          request_key: str | None = None) -> dict[str, Any]:
        who = self.actors(actor)
        data = load(DistrictRegistration, payload)
        return dump(District, self.store.districts.register(data, who, request_key))

    @rpc
    def get_district(self, district_id: str) -> dict[str, Any]:
        return dump(District, self.store.districts.get(district_id))

    @rpc
    def list_districts(self, limit: int = 50, cursor: str | None = None) -> dict[str, Any]:
        return self.store.districts.list(_limit(limit), cursor)

    @rpc
    def districts_for_names(self, names: list[str], actor: Signed = None) -> dict[str, str]:
        """`kepu migrate districts`: the district id of each name, found or registered."""
        who = self.actors(actor)
        if not isinstance(names, list) or len(names) > 1000 or not all(
                isinstance(n, str) and 1 <= len(n) <= 200 for n in names):
            raise validation_error("names", "a list of at most 1000 district names")
        return self.store.districts.for_names(names, who)

    # -- API keys --------------------------------------------------------------------------
    @rpc
    def create_api_key(self, payload: dict[str, Any], actor: Signed = None,
                       request_key: str | None = None) -> dict[str, Any]:
        who = self.actors(actor)
        return self.store.api_keys.create(load(ApiKeyRequest, payload), who, request_key)

    @rpc
    def list_api_keys(self, query: dict[str, Any], actor: Signed = None) -> dict[str, Any]:
        who = self.actors(actor)
        q = load(ApiKeyQuery, query or {})
        return self.store.api_keys.list(q["org_id"], who, q["limit"], q["cursor"])

    @rpc
    def revoke_api_key(self, api_key_id: str, actor: Signed = None) -> dict[str, Any]:
        return self.store.api_keys.revoke(api_key_id, self.actors(actor))

    @rpc
    def verify_api_key(self, raw: str) -> dict[str, Any]:
        """The gateway's question for `Authorization: Bearer kepu_…`: who is this key?"""
        return self.store.api_keys.verify(raw)

    # -- audit -----------------------------------------------------------------------------
    @rpc
    def record_requests(self, entries: list[dict[str, Any]]) -> dict[str, Any]:
        if not isinstance(entries, list) or len(entries) > MAX_AUDIT_BATCH:
            raise validation_error("entries", f"a list of at most {MAX_AUDIT_BATCH}")
        loaded, refused = [], 0
        for entry in entries:  # one bad record must not hold back the rest of the batch
            try:
                loaded.append(load(AuditEntry, entry))
            except ValidationFailed as exc:
                refused += 1
                log.error("audit record refused", extra={"errors": exc.errors})
        return {"recorded": self.store.audit.requests(loaded), "refused": refused}

    @rpc
    def audit(self, query: dict[str, Any], actor: Signed = None) -> dict[str, Any]:
        who = self.actors(actor)
        return self.store.audit.query(load(AuditQuery, query or {}), who)

    @rpc
    def export_audit(self, query: dict[str, Any], actor: Signed = None) -> str:
        who = self.actors(actor)
        return self.store.audit.export_csv(load(AuditQuery, query or {}), who)

    @rpc
    def recent_cutoffs(self) -> list[dict[str, Any]]:
        """Cut-offs within one access-token lifetime: what a starting gateway must load."""
        ttl = self.store.policy.access_ttl.total_seconds()
        since = math.floor(clock.now().timestamp() - ttl) - 5
        return self.store.users.recent_cutoffs(since)

    # -- organisations learned from their producers ----------------------------------------
    @subscribe("booking.school_registered")
    def on_school_registered(self, event: dict[str, Any]) -> None:
        data = event["data"]
        self.store.organisations.learn("school", data["school_id"], data["name"],
                                       data.get("district"))

    @subscribe("venues.venue_registered")
    def on_venue_registered(self, event: dict[str, Any]) -> None:
        self._learn_venue(event["data"])

    @subscribe("venues.venue_updated")
    def on_venue_updated(self, event: dict[str, Any]) -> None:
        self._learn_venue(event["data"])

    def _learn_venue(self, data: dict[str, Any]) -> None:
        self.store.organisations.learn("venue", data["venue_id"], data["name"],
                                       data.get("district"))

    # -- upkeep ----------------------------------------------------------------------------
    @timer(interval=60)
    def repair_acceptances(self) -> None:
        """Finish invitation acceptances a crash left half-way (`invitations.repair`)."""
        done = self.store.invitations.repair()
        if done:
            log.warning("finished interrupted invitation acceptances", extra={"count": done})
