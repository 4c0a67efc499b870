"""Minors' names and guardians' contacts never reach the logs (issue #16.3).

One full scenario through the running stack — a venue and a school registered, a session
published and claimed, rosters uploaded (some refused for bad rows), messages delivered to
the sinks (one refused by a provider that echoes the number back), consent answered, links
gone stale — and then every log line of every process is searched for each pupil's and
guardian's name and each contact in every form it was written or could be echoed in.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest

from services.kit.actor import Actor, actor_key, sign
from services.kit.errors import Forbidden
from tests.notifications_helpers import (
    CONSENT_URL,
    School,
    Venue,
    claim,
    group,
    log,
    put_roster,
    roster_path,
)
from tests.support import Client, problem, wait_for

pytestmark = pytest.mark.stack

LABEL = "三年级(4)班"
CSV_HEADER = "学生姓名,学号,家长姓名,关系,手机,邮箱,通知方式\n"


def phone() -> str:
    return f"13{uuid.uuid4().int % 7 + 3}{uuid.uuid4().int % 10**8:08d}"


def dashed(number: str) -> str:
    return f"{number[:3]}-{number[3:7]}-{number[7:]}"


def spaced(number: str) -> str:
    return f"{number[:3]} {number[3:7]} {number[7:]}"


def phone_forms(number: str) -> list[str]:
    """Every way a mobile number may be written: as typed, stored or echoed."""
    return [number, dashed(number), spaced(number), f"+86 {spaced(number)}",
            f"+86{number}", f"0086{number}", f"+86-{dashed(number)}",
            f"{number[3:7]}-{number[7:]}", f"{number[3:7]} {number[7:]}"]


def email_forms(address: str) -> list[str]:
    """The address, and its local part beyond the first character a mask keeps."""
    return [address, address.split("@")[0][1:]]


class Fixtures:
    """One class of pupils and guardians, every name and contact unique to this run."""

    def __init__(self) -> None:
        t = uuid.uuid4().hex[:8]
        self.t = t
        self.pupils = {k: f"{k}小{t}" for k in ("林", "陈", "周", "吴", "郑", "王", "钱")}
        self.guardians = {k: f"{k}家长{t}" for k in self.pupils} | {"吴2": f"吴爸爸{t}",
                                                                  "林2": f"林奶奶{t}"}
        self.phones = {k: phone() for k in ("林", "陈", "吴2", "郑", "林2", "钱")}
        self.emails = {"周": f"_zhou.{t}@example.cn", "吴": f"wu.{t}@example.com",
                       "王": f"wang.{t}@example.cn"}

    def row(self, key: str, number: int, phone_text: str = "", email: str = "",
            channel: str = "", guardian: str | None = None) -> str:
        return (f"{self.pupils[key]},{number:03d},{self.guardians[guardian or key]},家长,"
                f"{phone_text},{email},{channel}\n")

    def valid(self) -> str:
        """Phones written as people type them: dashed, spaced with +86, bare."""
        p, e = self.phones, self.emails
        return CSV_HEADER + "".join([
            self.row("林", 1, dashed(p["林"]), channel="sms"),
            self.row("陈", 2, f"+86 {spaced(p['陈'])}", channel="sms"),
            self.row("周", 3, email=e["周"], channel="email"),
            self.row("吴", 4, email=e["吴"], channel="email"),
            self.row("吴", 4, spaced(p["吴2"]), channel="sms", guardian="吴2"),
        ])

    def with_bad_rows(self) -> str:
        p, e = self.phones, self.emails
        return self.valid() + "".join([
            self.row("郑", 5, dashed(p["郑"])[:-1], channel="sms"),      # a digit short
            self.row("林", 1, dashed(p["林"]), channel="sms"),           # the same guardian
            self.row("王", 6, email=e["王"][:-3] + "@", channel="email"),  # a broken address
            self.row("钱", 7, f"+86 {p['钱']}", email=e["王"], channel="wechat"),  # no openid
        ])

    def headerless(self) -> str:
        return self.valid()[len(CSV_HEADER):]

    def replaced(self) -> str:
        """周 left the class; 林's guardian is now their grandmother, another number."""
        p, e = self.phones, self.emails
        return CSV_HEADER + "".join([
            self.row("林", 1, dashed(p["林2"]), channel="sms", guardian="林2"),
            self.row("陈", 2, f"+86 {spaced(p['陈'])}", channel="sms"),
            self.row("吴", 4, email=e["吴"], channel="email"),
        ])

    def secrets(self) -> list[str]:
        found = [*self.pupils.values(), *self.guardians.values()]
        for number in self.phones.values():
            found += phone_forms(number)
        for address in self.emails.values():
            found += email_forms(address)
        return found


def readable(line: str) -> str:
    """A log line as searched: JSON lines decoded too (they escape 王 as \\u738b)."""
    try:
        decoded = json.loads(line)
    except ValueError:
        return line
    return f"{line}\n{json.dumps(decoded, ensure_ascii=False)}"


def log_lines(tmp_root: Path) -> list[tuple[str, str]]:
    """(file, line) of every log every process of the stack wrote, decoded."""
    paths = sorted({*tmp_root.glob("logs/*.log"), *tmp_root.glob("*.log"),
                    *tmp_root.glob("var/**/*.log")})
    assert any(p.name == "notifications.log" for p in paths), paths
    return [(p.name, readable(line)) for p in paths
            for line in p.read_text(encoding="utf-8", errors="replace").splitlines()]


def test_no_name_or_contact_reaches_any_log(api, sinks, stack, rpc, tmp_root):
    f = Fixtures()
    venue = Venue(api, name="自然博物馆 privacy")
    session = venue.publish(capacity=60, title="恐龙化石")
    school = School(api)
    sinks.http.refuse(f.phones["陈"])  # the provider answers 400 and echoes the number

    # rosters refused: bad rows, a missing header line, a JSON roster naming a guardian twice
    bad = problem(put_roster(school.client, school.id, LABEL, f.with_bad_rows()), 422)
    assert set(bad["errors"]) == {"rows.6.手机", "rows.7.家长姓名", "rows.8.邮箱",
                                  "rows.9.通知方式"}
    assert "row 6 (file line 7), column 手机: not a mainland mobile number" in bad["detail"]
    problem(put_roster(school.client, school.id, LABEL, f.headerless()), 422)
    twice = {"name": f.guardians["郑"], "phone": f.phones["郑"]}
    problem(put_roster(school.client, school.id, LABEL, {"pupils": [
        {"name": f.pupils["郑"], "guardians": [twice, twice]}]}), 422)

    stored = put_roster(school.client, school.id, LABEL, f.valid())
    assert stored.status_code == 200, stored.text
    assert stored.json()["pupil_count"] == 4 and stored.json()["guardian_count"] == 5

    # a verified actor only: an unsigned one is refused by the service itself
    with pytest.raises(Forbidden):
        rpc.notifications.get_roster({"sub": "x", "role": "school", "org": school.id},
                                     school.id, LABEL)
    signed = sign(Actor("t", "school", school.id),
                  actor_key(os.environ["KEPU_JWT_SECRET"]))
    assert rpc.notifications.get_roster(signed, school.id, LABEL)["pupil_count"] == 4

    made = claim(school, session["session_id"], group(LABEL, students=4))

    def settled() -> list[dict] | None:
        entries = log(school.client, made["claim_id"])
        done = [e for e in entries if e["status"] in ("sent", "failed")]
        return entries if len(entries) == 5 and len(done) == 5 else None

    entries = wait_for(settled, timeout=60, message="5 messages sent or failed")
    [failed] = [e for e in entries if e["status"] == "failed"]
    assert "HTTP 400" in failed["error"] and failed["recipient"].endswith(f.phones["陈"][-4:])

    # consent through the links as they were delivered
    mail = wait_for(lambda: (sinks.smtp.to(f.emails["周"]) or [None])[0])
    zhou_link = CONSENT_URL.search(mail.text).group(1)
    [hook] = wait_for(lambda: sinks.http.to(f.phones["林"], "/sms") or None)
    lin_link = CONSENT_URL.search(hook.body["text"]).group(1)
    parent = Client("", None)
    assert parent.get(zhou_link).status_code == 200
    key = {"Idempotency-Key": uuid.uuid4().hex}
    yes = parent.post(lin_link, json={"answer": "yes", "guardian_name": f.guardians["林"]},
                      headers=key)
    assert yes.status_code == 201, yes.text
    again = parent.post(lin_link, json={"answer": "yes", "guardian_name": f.guardians["林"]},
                        headers=key)
    assert again.status_code == 201 and again.json()["answer"] == "yes"

    # the roster changes: a pupil leaves, a guardian is replaced; their old links go stale
    assert put_roster(school.client, school.id, LABEL, f.replaced()).status_code == 200
    left = problem(parent.get(zhou_link), 409)
    assert left["code"] == "consent-link-stale"
    replaced = problem(parent.post(lin_link, json={"answer": "no"}), 409)
    assert replaced["code"] == "consent-link-stale"
    consents = school.client.get(f"/v1/claims/{made['claim_id']}/consents").json()
    assert consents["summary"] == {"pupils": 3, "yes": 1, "no": 0, "pending": 2}
    assert school.client.get(roster_path(school.id, LABEL)).status_code == 200
    wait_for(lambda: sinks.http.to(f.phones["林2"], "/sms") or None,
             message="the new guardian hears of the trip")

    lines = log_lines(tmp_root)
    # the scenario was logged (so the search below looks at something) ...
    notifications = "\n".join(line for name, line in lines if name == "notifications.log")
    assert "rows.6.手机" in notifications and "consent-link-stale" in notifications
    assert f"{f.phones['陈'][:3]}****{f.phones['陈'][-4:]}" in notifications
    # ... and none of it names a pupil or guardian, nor any contact in any form
    leaks = [(secret, name, line[:300]) for secret in f.secrets() for name, line in lines
             if secret.lower() in line.lower()]
    assert leaks == []
