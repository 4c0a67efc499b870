"""Building blocks the identity tests share: invite, accept, sign in, read the outbox."""

from __future__ import annotations

from typing import Any

from services.identity.tests.conftest import ADMIN, PASSWORD
from services.kit.actor import Actor
from services.kit.outbox import pending

CLIENT = {"address": "203.0.113.7", "user_agent": "pytest"}


def outbox_events(collection: Any, doc_id: str, event_type: str) -> list[dict[str, Any]]:
    doc = collection.find_one({"_id": doc_id}) or {}
    return [env for _, env in pending(doc) if env["type"] == event_type]


def invite(repo: Any, email: str | None = None, mobile: str | None = None, role: str = "school",
           org_id: str | None = "sch_a", manager: bool = False, actor: Actor = ADMIN,
           **extra: Any) -> tuple[dict[str, Any], str]:
    """An invitation and the raw token its link carries (read from the event, as the
    notifications service will)."""
    data = {"email": email, "mobile": mobile, "org_id": org_id, "role": role,
            "manager": manager, "language": "zh-CN", "display_name": None, **extra}
    invitation = repo.invitations.invite(data, actor)
    return invitation, token_of(repo, invitation["invitation_id"])


def token_of(repo: Any, invitation_id: str) -> str:
    sent = outbox_events(repo.db.invitations, invitation_id, "identity.invitation_sent")
    return sent[-1]["data"]["link"].split("token=", 1)[1]


def accept(repo: Any, token: str, password: str = PASSWORD,
           name: str | None = "王老师") -> dict[str, Any]:
    return repo.invitations.accept({"token": token, "password": password,
                                    "display_name": name, "language": None}, CLIENT)


def member(repo: Any, email: str, role: str = "school", org_id: str | None = "sch_a",
           manager: bool = False, password: str = PASSWORD) -> dict[str, Any]:
    """A person invited and accepted: {user_id, membership}."""
    _, token = invite(repo, email=email, role=role, org_id=org_id, manager=manager)
    return accept(repo, token, password)


def login(repo: Any, identifier: str, password: str = PASSWORD,
          client: dict[str, Any] | None = None) -> dict[str, Any]:
    return repo.sessions.login(identifier, password, client or CLIENT)


def acting(pair: dict[str, Any]) -> Actor:
    """The actor the gateway would derive from this pair's access token."""
    return Actor(sub=pair["user_id"], role=pair["role"], org=pair["org_id"])


class SpyHasher:
    """Wraps argon2's PasswordHasher (slotted, so it cannot be patched) to record verifies."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: list[str] = []

    def verify(self, stored: str, password: str) -> bool:
        self.calls.append(stored)
        return self.inner.verify(stored, password)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)
