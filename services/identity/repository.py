"""The identity service's database, and the domain objects over its collections.

Collections: `users` and `identifiers` (people), `memberships`, `organisations` (districts,
and the schools and venues learned from events) with `district_codes`, `invitations`,
`refresh_tokens`, `resets`, `api_keys`, `throttle`, `audit`, and `request_keys`. Those
whose documents carry outbox entries are listed in `outbox_collections`.
"""

from __future__ import annotations

from pymongo.database import Database

from services.identity.api_keys import ApiKeys
from services.identity.audit import Audit
from services.identity.authority import Authority
from services.identity.districts import Districts
from services.identity.invitations import Invitations
from services.identity.members import Members
from services.identity.memberships import Memberships
from services.identity.operators import Operators
from services.identity.organisations import Organisations
from services.identity.passwords import Passwords
from services.identity.people import People
from services.identity.policy import Policy
from services.identity.resets import Resets
from services.identity.sessions import Sessions
from services.identity.throttle import Throttle
from services.identity.users import Users
from services.kit.config import Settings
from services.kit.mongo import Repository
from services.kit.request_keys import RequestKeys


class IdentityRepository(Repository):
    outbox_collections = ("users", "memberships", "organisations", "invitations", "resets",
                          "api_keys")

    def __init__(self, db: Database, settings: Settings, policy: Policy | None = None,
                 hasher: Passwords | None = None) -> None:
        super().__init__(db, settings)
        if not settings.jwt_secret:
            raise ValueError("identity signs access tokens: KEPU_JWT_SECRET must be set")
        self.policy = policy or Policy.from_env()
        self.hasher = hasher or Passwords()
        self.request_keys = RequestKeys(self.db.request_keys)
        once = self.request_keys
        self.organisations = Organisations(self.db.organisations)
        self.users = Users(self.db.users, self.db.identifiers)
        self.memberships = Memberships(self.db.memberships)
        self.authority = Authority(self.memberships)
        self.throttle = Throttle(self.db.throttle)
        self.audit = Audit(self.db.audit, self.organisations, self.authority,
                           self.policy.audit_retention)
        self.districts = Districts(self.organisations, self.db.district_codes, once,
                                   self.audit)
        self.sessions = Sessions(self.db.refresh_tokens, self.users, self.memberships,
                                 self.hasher, self.throttle, self.audit, self.policy,
                                 settings.jwt_secret)
        self.people = People(self.users, self.memberships)
        self.members = Members(self.users, self.memberships, self.sessions, self.authority,
                               self.audit)
        self.invitations = Invitations(self.db.invitations, self.users, self.memberships,
                                       self.organisations, self.authority, self.hasher,
                                       self.throttle, self.audit, self.policy, once)
        self.resets = Resets(self.db.resets, self.users, self.sessions, self.hasher,
                             self.throttle, self.audit, self.policy)
        self.operators = Operators(self.users, self.memberships, self.organisations,
                                   self.hasher, self.audit)
        self.api_keys = ApiKeys(self.db.api_keys, self.organisations, self.authority,
                                self.audit, once)

    def ensure_indexes(self) -> None:
        super().ensure_indexes()
        for part in (self.request_keys, self.organisations, self.users, self.memberships,
                     self.throttle, self.audit, self.sessions, self.invitations, self.resets,
                     self.api_keys):
            part.ensure_indexes()
