"""The operator's paths into identity: the first admin, and audited minted tokens.

`provision` makes a person with a password and one membership without an invitation: how
`kepu user create-admin` bootstraps the first admin (nobody exists yet to invite them)
and how `make run` gives its demo people logins. It is admin-only (the CLI signs a system
admin actor with the platform secret, which only operators hold), and idempotent: an
existing person keeps their password (unless `set_password`: the demo, whose password file
was lost) and gains the membership if they lacked it.

`record_token` writes the audit record of a token `kepu token` minted, so every bearer
token that did not come from a sign-in is still traceable (jti, role, org, lifetime).
"""

from __future__ import annotations

from typing import Any

from services.identity import contacts, passwords
from services.identity.audit import Audit
from services.identity.memberships import Memberships
from services.identity.organisations import Organisations
from services.identity.passwords import Passwords
from services.identity.users import Users
from services.identity.users import public as public_user
from services.kit.actor import Actor
from services.kit.ids import new_id


class Operators:
    def __init__(self, users: Users, memberships: Memberships, organisations: Organisations,
                 hasher: Passwords, audit: Audit) -> None:
        self.users = users
        self.memberships = memberships
        self.organisations = organisations
        self.hasher = hasher
        self.audit = audit

    def provision(self, data: dict[str, Any], actor: Actor) -> dict[str, Any]:
        """The person named by `identifier`, with the membership; `created` says if new."""
        actor.require(detail="only an operator (admin) may provision people")
        kind, value = contacts.parse(data["identifier"])
        role, org_id = data["role"], data.get("org_id")
        org_kind = self.organisations.for_role(role, org_id)
        user = self.users.by_identifier(kind, value)
        created = False
        if user is None:
            passwords.check_new(data["password"], (value,))
            user_id, created = self.users.create(
                new_id("usr"), kind, value, data["display_name"], data["language"],
                self.hasher.hash(data["password"]))
            user = self.users.require(user_id)
        elif data.get("set_password"):
            passwords.check_new(data["password"], (value,))
            self.users.set_password(user["_id"], self.hasher.hash(data["password"]))
            self.users.cut_off(user["_id"], "password-reset")
            self.audit.action("password_reset", 200, actor=actor, resource_id=user["_id"],
                              detail="by an operator")
        had = self.memberships.active(user["_id"], org_id, role)
        membership = self.memberships.add(user["_id"], org_kind, org_id, role,
                                          data["manager"], actor.name)
        if had is None:
            self.audit.action("member_added", 201, actor=actor, org_id=org_id,
                              resource_id=membership["membership_id"],
                              detail=f"provisioned {role} {user['_id']}")
        return {"user": public_user(user), "membership": membership, "created": created}

    def record_token(self, data: dict[str, Any], actor: Actor) -> dict[str, Any]:
        actor.require(detail="only an operator (admin) may mint tokens")
        self.audit.action("token_minted", 201, actor=actor, org_id=data.get("org_id"),
                          resource_id=data["jti"],
                          detail=f"{data['role']} sub={data['sub']} ttl={data['ttl_s']}s")
        return {"recorded": True}
