"""The demo's people: real logins for `make run` instead of raw tokens.

An admin, the district's supervision officer and finance officer, the museum's education
manager and a school's coordinator are provisioned through identity's operator path
(`identity.provision`, the same one `kepu user create-admin` uses), each with a password
generated once and kept in `var/demo-logins` (mode 0600). A rerun reads the file and
provisions again, which changes nothing (a person keeps their password; a membership
already held is kept). A person missing from the file (it was deleted, the database kept)
gets a new password, so what is printed always signs in.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deploy.private import write_private
from services.kit.actor import Actor, actor_key, sign
from services.kit.config import Settings
from services.kit.rpc_client import RpcClient

FILE = "demo-logins"


@dataclass(frozen=True)
class Login:
    role: str
    identifier: str
    password: str
    org_id: str | None
    label: str


def _people(demo: Any) -> list[tuple[str, str, str | None, str]]:
    """(role, identifier, org id, who) of each demo person."""
    venue, school = demo.venues["museum"], demo.schools["shuyuan"]
    return [
        ("admin", "admin@demo.kepu.cn", None, "Kepu operator"),
        ("district", "dudao@demo.kepu.cn", demo.district_id, "区教育局督导 supervision"),
        ("finance", "caiwu@demo.kepu.cn", demo.district_id, "区教育局财务 finance"),
        ("venue", "museum@demo.kepu.cn", venue["venue_id"], venue["name"]),
        ("school", "shuyuan@demo.kepu.cn", school["school_id"], school["name"]),
    ]


def _read(path: Path) -> dict[str, str]:
    """identifier → password from an earlier run's file."""
    known: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            parts = line.split("\t")
            if len(parts) >= 3 and not line.startswith("#"):
                known[parts[1]] = parts[2]
    return known


def ensure(demo: Any, settings: Settings, var: Path) -> list[Login]:
    """Every demo person, signed up with a password from var/demo-logins (made once)."""
    path = var / FILE
    known = _read(path)
    operator = sign(Actor.system("demo"), actor_key(settings.jwt_secret))
    logins = []
    rpc = RpcClient(settings.amqp_url, timeout=30)
    try:
        for role, identifier, org_id, label in _people(demo):
            word = known.get(identifier) or f"Kepu-{secrets.token_urlsafe(9)}"
            rpc.call("identity", "provision", {
                "identifier": identifier, "password": word, "display_name": label,
                "role": role, "org_id": org_id, "manager": True,
                "set_password": identifier not in known}, actor=operator)
            logins.append(Login(role, identifier, word, org_id, label))
    finally:
        rpc.close()
    write_private(path, "# role\tidentifier\tpassword\torg\twho\n" + "".join(
        f"{x.role}\t{x.identifier}\t{x.password}\t{x.org_id or '-'}\t{x.label}\n"
        for x in logins))
    return logins


def lines(logins: list[Login], url: str, show_passwords: bool, var: Path) -> list[str]:
    """The welcome's sign-in lines: passwords only on the terminal of `make run`."""
    out = ["sign in (POST /v1/auth/login {identifier, password}):"]
    for x in logins:
        secret = x.password if show_passwords else f"(password in {var / FILE})"
        out.append(f"  {x.role:9} {x.identifier:24} {secret}   {x.label}")
    out.append(f"try: curl -s -X POST {url}/v1/auth/login -H 'Content-Type: application/json' "
               "-d '{\"identifier\": \"shuyuan@demo.kepu.cn\", \"password\": \"…\"}'")
    return out
