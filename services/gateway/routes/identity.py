"""Identity over HTTP: signing in, the signed-in person, districts, invitations, members,
API keys and the audit trail (docs/identity.md).

Public routes (no token) pass the client's address — as the throttle sees it, through
the `KEPU_TRUSTED_PROXIES` in front — so identity throttles sign-in per address and records it.
Who may do what beyond the route's roles (a manager of that organisation, an admin) is
decided by identity from the membership at that moment, never from the token.
"""

from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Response

from services.contracts.identity import (
    ROLES,
    AcceptanceBody,
    ApiKeyQuery,
    ApiKeyRequest,
    AuditQuery,
    District,
    DistrictQuery,
    DistrictRegistration,
    Invitation,
    InvitationQuery,
    LoginBody,
    LogoutBody,
    MemberQuery,
    PasswordResetBody,
    PasswordResetRequestBody,
    PeopleQuery,
    Person,
    RefreshBody,
    SwitchBody,
    TokenPair,
)
from services.gateway.routing import Call, route

AUTH = "auth"
ANYONE = tuple(ROLES)  # any signed-in caller; identity decides the rest


def _with_client(call: Call) -> dict[str, Any]:
    return {**call.body, "client": call.client}


def _query(call: Call) -> dict[str, Any]:
    """The query as sent (identity loads it again with the same schema)."""
    return {k: v for k, v in call.request.args.to_dict().items()}


# -- signing in ----------------------------------------------------------------------------
@route("POST", "/v1/auth/login", roles=None, tag=AUTH, body=LoginBody, response=TokenPair)
def login(call: Call) -> Any:
    """Sign in with an e-mail address or mainland mobile and a password.

    Answers an access token (a JWT for `Authorization: Bearer`, 15 minutes at most) and a
    refresh token (30 days, single use). A wrong identifier and a wrong password get the
    same 401. Repeated failures are throttled per identifier and per client address: 429
    with `Retry-After`.
    """
    return call.rpc.identity.login(_with_client(call))


@route("POST", "/v1/auth/refresh", roles=None, tag=AUTH, body=RefreshBody,
       response=TokenPair)
def refresh(call: Call) -> Any:
    """Spend a refresh token for a new pair.

    A refresh token presented a second time ends the whole sign-in (one copy was stolen):
    401 `refresh-reused`, and the next one in the family is refused too.
    """
    return call.rpc.identity.refresh(_with_client(call))


@route("POST", "/v1/auth/logout", roles=None, tag=AUTH, body=LogoutBody)
def logout(call: Call) -> Any:
    """Sign out: end this sign-in, or with `everywhere` every one (access tokens included)."""
    return call.rpc.identity.logout(_with_client(call))


@route("POST", "/v1/auth/switch", roles=ANYONE, tag=AUTH, body=SwitchBody,
       response=TokenPair)
def switch(call: Call) -> Any:
    """Act in another of your memberships: a new pair for that organisation and role.

    403 `not-a-member` for an organisation or role you do not hold.
    """
    return call.rpc.identity.switch(_with_client(call), actor=call.actor)


@route("POST", "/v1/auth/password-reset", roles=None, tag=AUTH,
       body=PasswordResetRequestBody, status=202)
def request_password_reset(call: Call) -> Any:
    """Ask for a password-reset link (valid 1 hour); the answer is the same with or
    without an account."""
    return call.rpc.identity.request_password_reset(_with_client(call))


@route("POST", "/v1/auth/password-reset/confirm", roles=None, tag=AUTH,
       body=PasswordResetBody)
def reset_password(call: Call) -> Any:
    """Set a new password with the link's token; every sign-in of the person ends."""
    return call.rpc.identity.reset_password(_with_client(call))


@route("GET", "/v1/me", roles=ANYONE, tag=AUTH)
def me(call: Call) -> Any:
    """The signed-in person, where they act now, and all their memberships, each with its
    organisation's `org_name` and `org_kind` (`org_name` null while identity has not
    learned it, and for the platform)."""
    return call.rpc.identity.me(actor=call.actor)


@route("GET", "/v1/people", roles=ANYONE, tag="members", query=PeopleQuery,
       response=Person, many=True)
def people(call: Call) -> Any:
    """Display names of people (`ids=usr_a,usr_b`, up to 100) who are members of the
    caller's organisation (admins: anyone), e.g. who created or approved a payout run.
    No contact, no status; ids the caller may not see are left out."""
    return call.rpc.identity.people(call.query["ids"], actor=call.actor)


# -- districts -----------------------------------------------------------------------------
@route("POST", "/v1/districts", roles=("admin",), tag="districts", body=DistrictRegistration,
       response=District, status=201, creates=True)
def register_district(call: Call) -> Any:
    """Register a district (an education bureau) as an organisation (admin)."""
    district = call.rpc.identity.register_district(call.body, actor=call.actor,
                                                   request_key=call.request_key)
    call.headers["Location"] = f"/v1/districts/{district['district_id']}"
    return district


@route("GET", "/v1/districts", roles=ANYONE, tag="districts", query=DistrictQuery,
       response=District, many=True)
def list_districts(call: Call) -> Any:
    """The registered districts, oldest first (cursor pages)."""
    return call.rpc.identity.list_districts(call.query["limit"], call.query["cursor"])


@route("GET", "/v1/districts/<district_id>", roles=ANYONE, tag="districts",
       response=District)
def get_district(call: Call) -> Any:
    """One district."""
    return call.rpc.identity.get_district(call.path["district_id"])


# -- invitations ---------------------------------------------------------------------------
@route("POST", "/v1/invitations", roles=ANYONE, tag="invitations", body=Invitation,
       status=201, creates=True)
def invite(call: Call) -> Any:
    """Invite a person by e-mail or mobile into an organisation (an admin, or a manager
    of that organisation). The link goes to the person, never to the inviter."""
    invitation = call.rpc.identity.invite(call.body, actor=call.actor,
                                          request_key=call.request_key)
    call.headers["Location"] = f"/v1/invitations/{invitation['invitation_id']}"
    return invitation


@route("GET", "/v1/invitations", roles=ANYONE, tag="invitations", query=InvitationQuery)
def list_invitations(call: Call) -> Any:
    """An organisation's invitations (managers and admins), by state."""
    return call.rpc.identity.list_invitations(_query(call), actor=call.actor)


@route("POST", "/v1/invitations/<invitation_id>/resend", roles=ANYONE, tag="invitations")
def resend_invitation(call: Call) -> Any:
    """Send a pending invitation again with a new link; the old link stops working."""
    return call.rpc.identity.resend_invitation(call.path["invitation_id"], actor=call.actor)


@route("POST", "/v1/invitations/<invitation_id>/revoke", roles=ANYONE, tag="invitations")
def revoke_invitation(call: Call) -> Any:
    """Withdraw a pending invitation."""
    return call.rpc.identity.revoke_invitation(call.path["invitation_id"], actor=call.actor)


@route("POST", "/v1/invitations/accept", roles=None, tag="invitations", body=AcceptanceBody)
def accept_invitation(call: Call) -> Any:
    """Accept an invitation with the link's token.

    A new person chooses a password (at least 10 characters, not a common one) and gives
    their name; someone who already has an account gives its password.
    """
    return call.rpc.identity.accept_invitation(_with_client(call))


# -- members -------------------------------------------------------------------------------
@route("GET", "/v1/members", roles=ANYONE, tag="members", query=MemberQuery)
def list_members(call: Call) -> Any:
    """An organisation's members (managers and admins)."""
    return call.rpc.identity.list_members(_query(call), actor=call.actor)


def _remove(call: Call) -> Any:
    return call.rpc.identity.remove_member(call.path["membership_id"], actor=call.actor)


@route("DELETE", "/v1/members/<membership_id>", roles=ANYONE, tag="members")
def remove_member(call: Call) -> Any:
    """Remove a membership: the person's tokens there stop working at once."""
    return _remove(call)


@route("POST", "/v1/members/<membership_id>/remove", roles=ANYONE, tag="members")
def remove_member_post(call: Call) -> Any:
    """The same as DELETE, for clients that only POST."""
    return _remove(call)


# -- API keys ------------------------------------------------------------------------------
@route("POST", "/v1/api-keys", roles=ANYONE, tag="api-keys", body=ApiKeyRequest, status=201,
       creates=True, secret_response=True)
def create_api_key(call: Call) -> Any:
    """Create an API key for an organisation (an admin, or its manager).

    The key (`kepu_…`) is in this answer only; it is never stored in a readable form. A
    retry with the same `Idempotency-Key` answers the record without the key.
    """
    key = call.rpc.identity.create_api_key(call.body, actor=call.actor,
                                           request_key=call.request_key)
    call.headers["Location"] = f"/v1/api-keys/{key['api_key_id']}"
    call.headers["Cache-Control"] = "no-store"
    return key


@route("GET", "/v1/api-keys", roles=ANYONE, tag="api-keys", query=ApiKeyQuery)
def list_api_keys(call: Call) -> Any:
    """An organisation's API keys (prefixes, never the keys)."""
    return call.rpc.identity.list_api_keys(_query(call), actor=call.actor)


@route("POST", "/v1/api-keys/<api_key_id>/revoke", roles=ANYONE, tag="api-keys")
def revoke_api_key(call: Call) -> Any:
    """Revoke an API key; every gateway refuses it at once."""
    return call.rpc.identity.revoke_api_key(call.path["api_key_id"], actor=call.actor)


# -- audit ---------------------------------------------------------------------------------
@route("GET", "/v1/audit", roles=ANYONE, tag="audit", query=AuditQuery)
def audit(call: Call) -> Any:
    """The audit trail: admins everything, district staff their district, managers their
    organisation. Filters: `from`, `to`, `user_id`, `org_id`, `action`, `resource_id`."""
    return call.rpc.identity.audit(_query(call), actor=call.actor)


@route("GET", "/v1/audit.csv", roles=ANYONE, tag="audit", query=AuditQuery,
       raw_response=True)
def audit_csv(call: Call) -> Any:
    """The same selection as CSV (at most 20 000 rows)."""
    text = call.rpc.identity.export_audit(_query(call), actor=call.actor)
    return Response(text, status=200, content_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="audit.csv"'})
