"""Identity: sign-in, invitations, memberships, districts, API keys, audit (events and RPC).

The gateway sends the public calls (login, refresh, accept, password reset) with no actor
and everything else with a signed actor. Events: invitations and password resets to
deliver (notifications), cut-offs the gateway keeps to refuse older access tokens, and
membership and district changes. docs/identity.md describes the flows.
"""

from __future__ import annotations

import re
from typing import Any

from marshmallow import ValidationError, fields, validate, validates_schema

from services.contracts.common import NAME, EventData, Instant, Strict, time_zone
from services.contracts.registry import event

ROLES = ("admin", "district", "finance", "venue", "school")
ORG_ROLES = ("district", "finance", "venue", "school")
ORG_KINDS = ("platform", "district", "school", "venue")
ROLE_ORG_KIND = {"admin": "platform", "district": "district", "finance": "district",
                 "venue": "venue", "school": "school"}
LANGUAGES = ("zh-CN", "en")
CHANNELS = ("email", "sms")
INVITATION_STATES = ("pending", "accepted", "revoked", "expired")
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
MOBILE = re.compile(r"(\+86|0086|86)?[\s\-]*1[3-9]([\s\-]*[0-9]){9}")
LIMIT = validate.Range(min=1, max=200)
SHORT = validate.Length(min=1, max=200)
PASSWORD = validate.Length(min=1, max=128)
TOKEN = validate.Length(min=16, max=200)



def _mobile(value: str) -> bool:
    if not MOBILE.fullmatch(value.strip()):
        raise ValidationError("not a mainland mobile number, e.g. 13812345678")
    return True


class Client(Strict):
    """Where a public call came from, as the gateway saw it (for throttling and audit)."""

    address = fields.String(load_default=None, allow_none=True,
                            validate=validate.Length(max=64))
    user_agent = fields.String(load_default=None, allow_none=True,
                               validate=validate.Length(max=300))


def _client(**kwargs: Any) -> fields.Nested:
    return fields.Nested(Client, load_default=lambda: {"address": None, "user_agent": None},
                         **kwargs)


# -- sign-in -----------------------------------------------------------------------------
class Login(Strict):
    """`POST /v1/auth/login`: an e-mail address or mainland mobile, and the password."""

    identifier = fields.String(required=True, validate=validate.Length(min=1, max=254))
    password = fields.String(required=True, validate=PASSWORD)
    client = _client()


class Refresh(Strict):
    """`POST /v1/auth/refresh`: a refresh token, spent by this call."""

    refresh_token = fields.String(required=True, validate=TOKEN)
    client = _client()


class Logout(Strict):
    """`POST /v1/auth/logout`: ends this sign-in, or with `everywhere` every one."""

    refresh_token = fields.String(required=True, validate=TOKEN)
    everywhere = fields.Boolean(load_default=False)
    client = _client()


class Switch(Strict):
    """`POST /v1/auth/switch`: act in another of the person's memberships."""

    org_id = fields.String(load_default=None, allow_none=True, validate=SHORT)
    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    client = _client()


class TokenPair(Strict):
    access_token = fields.String(required=True)
    token_type = fields.String(required=True)
    expires_in = fields.Integer(required=True)
    refresh_token = fields.String(required=True)
    refresh_expires_at = Instant(required=True)
    user_id = fields.String(required=True)
    org_id = fields.String(allow_none=True)
    role = fields.String(required=True)


class PasswordResetRequest(Strict):
    """`POST /v1/auth/password-reset`: always answered the same, account or not."""

    identifier = fields.String(required=True, validate=validate.Length(min=1, max=254))
    client = _client()


class PasswordReset(Strict):
    """`POST /v1/auth/password-reset/confirm`: the link's token and the new password."""

    token = fields.String(required=True, validate=TOKEN)
    password = fields.String(required=True, validate=PASSWORD)
    client = _client()


# -- invitations and memberships ---------------------------------------------------------
class Invitation(Strict):
    """`POST /v1/invitations`: invite a person by e-mail or mobile into one organisation."""

    email = fields.Email(load_default=None, allow_none=True,
                         validate=validate.Length(max=254))
    mobile = fields.String(load_default=None, allow_none=True, validate=_mobile)
    org_id = fields.String(load_default=None, allow_none=True, validate=SHORT)
    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    manager = fields.Boolean(load_default=False)
    language = fields.String(load_default="zh-CN", validate=validate.OneOf(LANGUAGES))
    display_name = fields.String(load_default=None, allow_none=True,
                                 validate=validate.Length(min=1, max=100))

    @validates_schema
    def _one_contact(self, data: dict[str, Any], **kwargs: Any) -> None:
        if bool(data.get("email")) == bool(data.get("mobile")):
            raise ValidationError("send exactly one of email or mobile", "email")
        if data.get("role") == "admin":
            if data.get("org_id"):
                raise ValidationError("an admin belongs to the platform, not to an org",
                                      "org_id")
        elif not data.get("org_id"):
            raise ValidationError(f"a {data.get('role')} membership needs an org_id",
                                  "org_id")


class Acceptance(Strict):
    """`POST /v1/invitations/accept`: the link's token; a new person also sets a password."""

    token = fields.String(required=True, validate=TOKEN)
    password = fields.String(required=True, validate=PASSWORD)
    display_name = fields.String(load_default=None, allow_none=True,
                                 validate=validate.Length(min=1, max=100))
    language = fields.String(load_default=None, allow_none=True,
                             validate=validate.OneOf(LANGUAGES))
    client = _client()


class InvitationQuery(Strict):
    org_id = fields.String(load_default=None, allow_none=True, validate=SHORT)
    state = fields.String(load_default=None, allow_none=True,
                          validate=validate.OneOf(INVITATION_STATES))
    limit = fields.Integer(load_default=50, validate=LIMIT)
    cursor = fields.String(load_default=None, allow_none=True, validate=SHORT)


class MemberQuery(Strict):
    org_id = fields.String(load_default=None, allow_none=True, validate=SHORT)
    limit = fields.Integer(load_default=50, validate=LIMIT)
    cursor = fields.String(load_default=None, allow_none=True, validate=SHORT)


class PeopleQuery(Strict):
    """`GET /v1/people?ids=usr_a,usr_b`: up to 100 user ids, comma-separated."""

    ids = fields.String(required=True, validate=validate.Length(min=1, max=4000))


class Person(Strict):
    """A person as colleagues see them in lists: a display name, nothing else."""

    user_id = fields.String(required=True)
    display_name = fields.String(required=True)


class Provision(Strict):
    """`identity.provision` (operators: `kepu user create-admin`, the demo): a person with a
    password and one membership, without an invitation."""

    identifier = fields.String(required=True, validate=validate.Length(min=1, max=254))
    password = fields.String(required=True, validate=PASSWORD)
    display_name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    language = fields.String(load_default="zh-CN", validate=validate.OneOf(LANGUAGES))
    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    org_id = fields.String(load_default=None, allow_none=True, validate=SHORT)
    manager = fields.Boolean(load_default=False)
    set_password = fields.Boolean(load_default=False)  # an existing person's too (demo)


class MintedToken(Strict):
    """`identity.record_token`: what `kepu token` minted, for the audit trail."""

    jti = fields.String(required=True, validate=SHORT)
    sub = fields.String(required=True, validate=SHORT)
    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    org_id = fields.String(load_default=None, allow_none=True, validate=SHORT)
    ttl_s = fields.Integer(required=True, validate=validate.Range(min=1, max=86_400))


# -- districts ---------------------------------------------------------------------------
class DistrictRegistration(Strict):
    """`POST /v1/districts`: an education bureau as an organisation (admin)."""

    name = fields.String(required=True, validate=NAME)
    code = fields.String(required=True, validate=validate.Regexp(
        r"\A[A-Za-z0-9\-]{2,20}\Z", error="2 to 20 letters, digits or '-', e.g. 310115"))
    timezone = fields.String(load_default="Asia/Shanghai", validate=time_zone)


class District(Strict):
    district_id = fields.String(required=True)
    name = fields.String(required=True)
    code = fields.String(required=True)
    timezone = fields.String(required=True)
    created_at = Instant(required=True)


# -- API keys ----------------------------------------------------------------------------
class ApiKeyRequest(Strict):
    """`POST /v1/api-keys`: a named key for one organisation, at most the creator's role."""

    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    org_id = fields.String(load_default=None, allow_none=True, validate=SHORT)
    role = fields.String(required=True, validate=validate.OneOf(ORG_ROLES))
    expires_at = Instant(load_default=None, allow_none=True)


class ApiKeyQuery(Strict):
    org_id = fields.String(load_default=None, allow_none=True, validate=SHORT)
    limit = fields.Integer(load_default=50, validate=LIMIT)
    cursor = fields.String(load_default=None, allow_none=True, validate=SHORT)


# -- audit -------------------------------------------------------------------------------
class AuditEntry(Strict):
    """One request the gateway answered, as it records it (`record_requests`)."""

    entry_id = fields.String(load_default=None, allow_none=True,
                             validate=validate.Regexp(r"\A[0-9a-f]{32}\Z"))
    method = fields.String(required=True, validate=validate.OneOf(HTTP_METHODS))
    route = fields.String(required=True, validate=validate.Length(min=1, max=200))
    resource_id = fields.String(load_default=None, allow_none=True, validate=SHORT)
    status = fields.Integer(required=True, validate=validate.Range(min=100, max=599))
    user_id = fields.String(load_default=None, allow_none=True, validate=SHORT)
    org_id = fields.String(load_default=None, allow_none=True, validate=SHORT)
    role = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(ROLES))
    api_key_id = fields.String(load_default=None, allow_none=True, validate=SHORT)
    request_id = fields.String(load_default=None, allow_none=True, validate=SHORT)
    client_address = fields.String(load_default=None, allow_none=True,
                                   validate=validate.Length(max=64))
    at = Instant(load_default=None, allow_none=True)


class AuditQuery(Strict):
    """`GET /v1/audit`: filters, all optional; `from` inclusive, `to` exclusive."""

    from_ = Instant(data_key="from", load_default=None, allow_none=True)
    to = Instant(load_default=None, allow_none=True)
    user_id = fields.String(load_default=None, allow_none=True, validate=SHORT)
    org_id = fields.String(load_default=None, allow_none=True, validate=SHORT)
    action = fields.String(load_default=None, allow_none=True, validate=SHORT)
    resource_id = fields.String(load_default=None, allow_none=True, validate=SHORT)
    limit = fields.Integer(load_default=50, validate=LIMIT)
    cursor = fields.String(load_default=None, allow_none=True, validate=SHORT)


# -- events ------------------------------------------------------------------------------
@event("identity.district_registered", 1)
class DistrictRegistered(EventData):
    """An admin registered a district (education bureau) as an organisation."""

    district_id = fields.String(required=True)
    name = fields.String(required=True)
    code = fields.String(required=True)
    timezone = fields.String(required=True)


@event("identity.invitation_sent", 1)
class InvitationSent(EventData):
    """An invitation to deliver: notifications sends `link` to `contact` over `channel`.

    `contact` is the full address (only the deliverer needs it); `contact_masked` is what
    logs and listings may show.
    """

    invitation_id = fields.String(required=True)
    channel = fields.String(required=True, validate=validate.OneOf(CHANNELS))
    contact = fields.String(required=True)
    contact_masked = fields.String(required=True)
    link = fields.String(required=True)
    language = fields.String(required=True, validate=validate.OneOf(LANGUAGES))
    org_id = fields.String(allow_none=True)
    org_name = fields.String(allow_none=True)
    role = fields.String(required=True)
    expires_at = fields.String(required=True)
    resent = fields.Boolean(load_default=False)


@event("identity.invitation_revoked", 1)
class InvitationRevoked(EventData):
    invitation_id = fields.String(required=True)
    org_id = fields.String(allow_none=True)


@event("identity.password_reset_requested", 1)
class PasswordResetRequested(EventData):
    """A reset link to deliver, like an invitation (valid one hour)."""

    user_id = fields.String(required=True)
    channel = fields.String(required=True, validate=validate.OneOf(CHANNELS))
    contact = fields.String(required=True)
    contact_masked = fields.String(required=True)
    link = fields.String(required=True)
    language = fields.String(required=True, validate=validate.OneOf(LANGUAGES))
    expires_at = fields.String(required=True)


@event("identity.member_added", 1)
class MemberAdded(EventData):
    membership_id = fields.String(required=True)
    user_id = fields.String(required=True)
    org_id = fields.String(allow_none=True)
    org_kind = fields.String(required=True, validate=validate.OneOf(ORG_KINDS))
    role = fields.String(required=True)
    manager = fields.Boolean(required=True)


@event("identity.member_removed", 1)
class MemberRemoved(EventData):
    """A membership ended; its refresh tokens are already revoked."""

    membership_id = fields.String(required=True)
    user_id = fields.String(required=True)
    org_id = fields.String(allow_none=True)
    role = fields.String(required=True)
    by = fields.String(required=True)


@event("identity.user_cutoff", 1)
class UserCutoff(EventData):
    """Refuse the user's access tokens issued before `not_before` (a whole second, UTC).

    The gateway keeps these in memory for one access-token lifetime (15 minutes) and
    refuses a token of `user_id` whose `iat` is earlier than `not_before_epoch`.
    """

    user_id = fields.String(required=True)
    not_before = fields.String(required=True)
    not_before_epoch = fields.Integer(required=True)
    reason = fields.String(required=True)


@event("identity.api_key_revoked", 1)
class ApiKeyRevoked(EventData):
    """A key the gateway may have cached as valid: forget it."""

    api_key_id = fields.String(required=True)
    prefix = fields.String(required=True)
    org_id = fields.String(required=True)


# -- what clients send over HTTP: the RPC payloads without `client` (the gateway fills it
# from the connection, so a caller cannot choose the address the throttle counts) --------
def _without_client(schema: type[Strict], name: str) -> type[Strict]:
    declared = {k: v for k, v in schema._declared_fields.items() if k != "client"}
    return type(name, (Strict,), {**declared, "__doc__": schema.__doc__})


LoginBody = _without_client(Login, "LoginBody")
RefreshBody = _without_client(Refresh, "RefreshBody")
LogoutBody = _without_client(Logout, "LogoutBody")
SwitchBody = _without_client(Switch, "SwitchBody")
PasswordResetRequestBody = _without_client(PasswordResetRequest, "PasswordResetRequestBody")
PasswordResetBody = _without_client(PasswordReset, "PasswordResetBody")
AcceptanceBody = _without_client(Acceptance, "AcceptanceBody")


class DistrictQuery(Strict):
    limit = fields.Integer(load_default=50, validate=LIMIT)
    cursor = fields.String(load_default=None, allow_none=True, validate=SHORT)
