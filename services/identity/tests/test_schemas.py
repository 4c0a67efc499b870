"""Every identity request schema refuses bad input with a 422 naming the field."""

from __future__ import annotations

import pytest

from services.contracts import identity as c
from services.kit.boundary import load
from services.kit.errors import ValidationFailed

CASES = [
    (c.Login, {"password": "x"}, "identifier"),
    (c.Login, {"identifier": "a@b.cn", "password": ""}, "password"),
    (c.Login, {"identifier": "a@b.cn", "password": "x" * 129}, "password"),
    (c.Login, {"identifier": "a@b.cn", "password": "x", "extra": 1}, "extra"),
    (c.Login, {"identifier": "a@b.cn", "password": "x", "client": {"address": "x" * 65}},
     "client.address"),
    (c.Refresh, {"refresh_token": "short"}, "refresh_token"),
    (c.Logout, {"refresh_token": "rt_" + "x" * 43, "everywhere": "maybe"}, "everywhere"),
    (c.Switch, {"org_id": "sch_a", "role": "parent"}, "role"),
    (c.Switch, {"org_id": "sch_a"}, "role"),
    (c.PasswordResetRequest, {}, "identifier"),
    (c.PasswordReset, {"token": "x" * 20}, "password"),
    (c.Invitation, {"role": "school", "org_id": "sch_a"}, "email"),
    (c.Invitation, {"role": "school", "org_id": "sch_a", "email": "a@b.cn",
                    "mobile": "13812345678"}, "email"),
    (c.Invitation, {"role": "school", "org_id": "sch_a", "email": "not-an-email"}, "email"),
    (c.Invitation, {"role": "school", "org_id": "sch_a", "mobile": "12345"}, "mobile"),
    (c.Invitation, {"role": "school", "email": "a@b.cn"}, "org_id"),
    (c.Invitation, {"role": "admin", "org_id": "sch_a", "email": "a@b.cn"}, "org_id"),
    (c.Invitation, {"role": "pupil", "org_id": "sch_a", "email": "a@b.cn"}, "role"),
    (c.Invitation, {"role": "school", "org_id": "sch_a", "email": "a@b.cn",
                    "language": "fr"}, "language"),
    (c.Invitation, {"role": "school", "org_id": "sch_a", "email": "a@b.cn",
                    "manager": "boss"}, "manager"),
    (c.Acceptance, {"password": "x" * 12}, "token"),
    (c.Acceptance, {"token": "x" * 20, "password": "x" * 12, "display_name": ""},
     "display_name"),
    (c.InvitationQuery, {"state": "lost"}, "state"),
    (c.InvitationQuery, {"limit": 0}, "limit"),
    (c.MemberQuery, {"limit": 201}, "limit"),
    (c.DistrictRegistration, {"code": "310115"}, "name"),
    (c.DistrictRegistration, {"name": "x", "code": "31 01 15"}, "code"),
    (c.DistrictRegistration, {"name": "x", "code": "310115", "timezone": "Mars/Base"},
     "timezone"),
    (c.ApiKeyRequest, {"role": "school"}, "name"),
    (c.ApiKeyRequest, {"name": "k", "role": "admin"}, "role"),
    (c.ApiKeyRequest, {"name": "k", "role": "school", "expires_at": "tomorrow"},
     "expires_at"),
    (c.ApiKeyQuery, {"limit": "many"}, "limit"),
    (c.AuditEntry, {"route": "/v1/x", "status": 200}, "method"),
    (c.AuditEntry, {"method": "BREW", "route": "/v1/x", "status": 200}, "method"),
    (c.AuditEntry, {"method": "GET", "route": "/v1/x", "status": 999}, "status"),
    (c.AuditEntry, {"method": "GET", "route": "", "status": 200}, "route"),
    (c.AuditEntry, {"method": "GET", "route": "/v1/x", "status": 200, "role": "god"},
     "role"),
    (c.AuditQuery, {"from": "yesterday"}, "from"),
    (c.AuditQuery, {"to": "2026-01-01T00:00:00"}, "to"),
    (c.AuditQuery, {"limit": 500}, "limit"),
]


@pytest.mark.parametrize(("schema", "payload", "field"), CASES,
                         ids=[f"{s.__name__}-{f}-{i}" for i, (s, _, f) in enumerate(CASES)])
def test_bad_input_is_refused_naming_the_field(schema, payload, field):
    with pytest.raises(ValidationFailed) as refused:
        load(schema, payload)
    assert field in refused.value.errors, refused.value.errors


def test_good_input_loads_with_defaults():
    login = load(c.Login, {"identifier": "a@b.cn", "password": "x"})
    assert login["client"] == {"address": None, "user_agent": None}
    invitation = load(c.Invitation, {"role": "admin", "email": "a@b.cn"})
    assert invitation["language"] == "zh-CN" and invitation["manager"] is False
    query = load(c.AuditQuery, {"from": "2026-09-01T08:00:00+08:00"})
    assert query["from_"] == "2026-09-01T00:00:00.000000Z" and query["limit"] == 50
