"""A demo district worth opening: what `make run` loads, through the public /v1 API only.

A 浦东新区-like district: four schools (two rural and under-resourced), four venues of
different kinds, sessions over the coming weeks (a weekly series, a window session, a
family 亲子 session, free and discounted ones), class rosters with guardians (invented names;
mobile numbers 138-0000-0xxx), claims, a tutor with a visit booked, and the district's
funded budgets and rate card.

Idempotent: each creating request carries a fixed Idempotency-Key, and every step looks
first for what an earlier run made (by name, title or label), so running `make run` again —
even after the request keys have expired — duplicates nothing. Tokens are minted here for
the demo's own callers; they are printed (`--tokens`) to the terminal of `make run` only.

    python -m deploy.demo --url http://127.0.0.1:8080 [--tokens] [--no-data]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time as time_
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import requests

from deploy import demo_logins
from services.contracts.terms import term_of
from services.kit import auth
from services.kit.config import Settings

DISTRICT = "浦东新区"
DISTRICT_CODE = "310115"  # its administrative code: how a rerun finds the district
SHANGHAI = ZoneInfo("Asia/Shanghai")
FINANCE_SUB = "demo-finance"

VENUES = [
    {"key": "museum", "name": "上海科技馆 Shanghai Science and Technology Museum",
     "kind": "science_museum",
     "location": {"lat": 31.2196, "lon": 121.5447}, "address": "上海市浦东新区世纪大道2000号",
     "accessibility": "无障碍入口与电梯 Step-free entrances; lifts.",
     "contact": {"name": "教育活动部", "phone": "021-68622000"}},
    {"key": "planetarium", "name": "上海天文馆 Shanghai Astronomy Museum", "kind": "planetarium",
     "location": {"lat": 30.8997, "lon": 121.9059},
     "address": "上海市浦东新区临港大道380号"},
    {"key": "zoo", "name": "上海野生动物园 Shanghai Wild Animal Park", "kind": "zoo",
     "location": {"lat": 31.0571, "lon": 121.7236},
     "address": "上海市浦东新区南六公路178号"},
    {"key": "university", "name": "上海科技大学 ShanghaiTech University", "kind": "university",
     "location": {"lat": 31.1788, "lon": 121.5900},
     "address": "上海市浦东新区华夏中路393号"},
]
SCHOOLS = [
    {"key": "shiyan", "name": "浦东新区实验小学",
     "location": {"lat": 31.2304, "lon": 121.5200}, "rural": False,
     "under_resourced": False, "students": 1200},
    {"key": "zhangjiang", "name": "张江高科实验小学",
     "location": {"lat": 31.2035, "lon": 121.5903}, "rural": False,
     "under_resourced": False, "students": 960},
    {"key": "shuyuan", "name": "书院镇中心小学",
     "location": {"lat": 30.9600, "lon": 121.8500}, "rural": True,
     "under_resourced": True, "students": 420},
    {"key": "laogang", "name": "老港镇中学",
     "location": {"lat": 31.0420, "lon": 121.8640}, "rural": True,
     "under_resourced": True, "students": 380},
]
# Rosters: (school, class label, grade, students, teachers, pupils with guardians).
CLASSES = [
    ("shiyan", "三年级2班", 3, 42, 3, [("李子涵", "李建国", "父亲"), ("王雨桐", "张丽", "母亲"),
                                      ("陈浩然", "陈志强", "父亲"), ("刘思琪", "赵敏", "母亲")]),
    ("shuyuan", "五年级1班", 5, 36, 2, [("周子轩", "周海峰", "父亲"), ("吴欣怡", "徐红", "母亲"),
                                       ("孙宇航", "孙伟", "父亲"), ("黄诗涵", "黄桂英", "祖母")]),
    ("laogang", "初一(3)班", 7, 40, 3, [("朱俊杰", "朱明", "父亲"), ("胡梦瑶", "林芳", "母亲"),
                                       ("郭一鸣", "郭立新", "父亲")]),
]


def _shanghai(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=SHANGHAI)


def _stamp(when: datetime) -> str:
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _next(weekday: int, after: date, weeks: int = 0) -> date:
    """The first ISO `weekday` (1 = Monday) at least two days after `after`, `weeks` later."""
    start = after + timedelta(days=2)
    return start + timedelta(days=(weekday - start.isoweekday()) % 7, weeks=weeks)


def sessions(today: date) -> list[dict[str, Any]]:
    """The demo's sessions, relative to `today` (each has its venue's key and a demo key)."""
    lab = _next(3, today)  # a Wednesday
    stars = _next(5, today, weeks=2)  # a Friday evening, two weeks on
    family = _next(6, today, weeks=1)  # a Saturday
    robots = _next(4, today, weeks=1)  # a Thursday
    return [
        {"venue": "museum", "key": "lab-series", "title": "少年科学实验室 Young Scientists' Lab",
         "description": "每周三下午的动手实验课：电路、光学、简单机械。Hands-on experiments "
                        "every Wednesday afternoon.",
         "category": "science", "audience": "students", "grades": [3, 6],
         "starts_at": _stamp(_shanghai(lab, 14)), "ends_at": _stamp(_shanghai(lab, 16)),
         "capacity": 80, "price_fen": 0, "max_seats_per_school": 45,
         "min_teachers_per_students": {"teachers": 1, "per_students": 20},
         "what_to_bring": "笔记本和铅笔 A notebook and a pencil",
         "repeat": {"weekly": {"weekdays": [3], "until": (lab + timedelta(weeks=5)).isoformat()}}},
        {"venue": "planetarium", "key": "winter-stars",
         "title": "星空探秘：冬季星座 Winter constellations",
         "description": "球幕影院与望远镜观测。名额按申请窗口分配，农村与薄弱学校优先。Dome show "
                        "and telescope viewing; seats allocated when the window closes.",
         "category": "science", "audience": "students", "grades": [4, 9],
         "starts_at": _stamp(_shanghai(stars, 18, 30)), "ends_at": _stamp(_shanghai(stars, 20, 30)),
         "capacity": 120, "price_fen": 0, "claim_policy": "window",
         "window_closes_at": _stamp(_shanghai(stars - timedelta(days=5), 17)),
         "max_seats_per_school": 50},
        {"venue": "zoo", "key": "family-day", "title": "亲子动物观察日 Family animal-watching day",
         "description": "家长与孩子一起记录动物行为。原价80元，优惠价30元/人。Parents and children "
                        "observe animal behaviour together; discounted from ¥80 to ¥30.",
         "category": "science", "audience": "family", "grades": [1, 6],
         "starts_at": _stamp(_shanghai(family, 9, 30)), "ends_at": _stamp(_shanghai(family, 12)),
         "capacity": 60, "price_fen": 3000, "what_to_bring": "防晒帽、水 A sun hat and water"},
        {"venue": "university", "key": "robots",
         "title": "走进实验室：机器人与人工智能 Inside a lab: robots and AI",
         "description": "高校实验室开放日，研究生带队参观。学生团体优惠价15元。A university "
                        "lab open day guided by graduate students; group price ¥15.",
         "category": "innovation", "audience": "students", "grades": [5, 9],
         "starts_at": _stamp(_shanghai(robots, 14)), "ends_at": _stamp(_shanghai(robots, 16, 30)),
         "capacity": 60, "price_fen": 1500, "max_seats_per_school": 45},
    ]


# (school, class label, venue, session key): which class claims which session.
CLAIMS = [("shiyan", "三年级2班", "museum", "lab-series"),
          ("shuyuan", "五年级1班", "planetarium", "winter-stars"),
          ("laogang", "初一(3)班", "university", "robots")]
TUTOR = {"name": "王建华", "level": "senior", "subjects": ["物理", "天文"]}


class DemoError(RuntimeError):
    pass


def _guardian_phone(n: int) -> str:
    return f"1380000{n:04d}"  # 138-0000-xxxx: plausible, and plainly not anyone's


def _items(body: Any) -> list[dict[str, Any]]:
    return body.get("items", []) if isinstance(body, dict) else list(body)


@dataclass
class Caller:
    """One demo identity: a bearer token and the gateway's URL."""

    url: str
    token: str
    keys: str = "demo-v1"  # the Idempotency-Key prefix
    http: requests.Session = field(default_factory=requests.Session)

    def call(self, method: str, path: str, key: str | None = None, ok: tuple[int, ...] = (),
             **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"}
        if key:
            headers["Idempotency-Key"] = f"{self.keys}-{key}"
        response = self.http.request(method, self.url + path, headers=headers, timeout=60,
                                     **kwargs)
        if response.status_code >= 400 and response.status_code not in ok:
            raise DemoError(f"{method} {path}: {response.status_code} {response.text[:500]}")
        return response.json() if response.content else None


class Demo:
    """Loads the demo district; every step finds what an earlier run made before creating."""

    def __init__(self, url: str, secret: str, today: date | None = None,
                 state: Path | None = None, keys: str = "demo-v1") -> None:
        self.url, self.secret, self.state, self.keys = url, secret, state, keys
        self.today = today or datetime.now(SHANGHAI).date()
        self.term = term_of(self.today)
        self.admin = self.caller("admin", None, "demo-admin")
        self.district_id: str | None = None
        self.venues: dict[str, dict[str, Any]] = {}
        self.schools: dict[str, dict[str, Any]] = {}
        self.sessions: dict[str, list[dict[str, Any]]] = {}
        self.tutor: dict[str, Any] | None = None

    def caller(self, role: str, org: str | None, sub: str) -> Caller:
        return Caller(self.url, auth.mint(self.secret, role, org, sub), self.keys)

    @property
    def finance(self) -> Caller:
        """The district's finance staff: their org is the district's id."""
        return self.caller("finance", self.district_id, FINANCE_SUB)

    def venue_caller(self, key: str) -> Caller:
        return self.caller("venue", self.venues[key]["venue_id"], f"demo-venue-{key}")

    def school_caller(self, key: str) -> Caller:
        return self.caller("school", self.schools[key]["school_id"], f"demo-school-{key}")

    # -- the steps ------------------------------------------------------------------------
    def load(self) -> Demo:
        self.register_district()
        self.register()
        self.publish()
        self.upload_rosters()
        self.claim()
        self.book_tutor()
        self.fund()
        return self

    def register_district(self) -> None:
        """The district as an organisation (identity), found by its code on a rerun."""
        cursor = None
        while True:
            page = self.admin.call("GET", "/v1/districts",
                                   params={"limit": 200, **({"cursor": cursor} if cursor
                                                            else {})})
            found = [d for d in _items(page) if d["code"] == DISTRICT_CODE]
            cursor = page.get("next_cursor")
            if found or not cursor:
                break
        district = found[0] if found else self.admin.call(
            "POST", "/v1/districts", "district-pudong",
            json={"name": DISTRICT, "code": DISTRICT_CODE, "timezone": "Asia/Shanghai"})
        self.district_id = district["district_id"]

    def _await_district(self, path: str, body: dict[str, Any]) -> None:
        """Wait until booking (schools) or venues knows the district from identity's event.

        The probe writes nothing: without an Idempotency-Key, a `district` name that is not
        the district's is refused (422 on `district`) once `district_id` is known, and on
        `district_id` before. A keyed request refused would be replayed as refused."""
        deadline = time_.monotonic() + 60
        while True:
            refused = self.admin.call("POST", path, ok=(422,),
                                      json={**body, "district": "?"}) or {}
            errors = refused.get("errors") or {}
            if "district" in errors and "district_id" not in errors:
                return
            if "district_id" not in errors or time_.monotonic() > deadline:
                raise DemoError(f"POST {path}: district {self.district_id} not known: "
                                f"{refused}")
            time_.sleep(0.2)

    def register(self) -> None:
        """Venues and schools. Neither can be listed, so an earlier run's ids come from the
        state file (checked against the API), else its Idempotency-Key returns them."""
        known, waited = self._known(), set()
        for kind, items, made in (("venue", VENUES, self.venues),
                                  ("school", SCHOOLS, self.schools)):
            for item in items:
                record_id = known.get(kind, {}).get(item["key"])
                found = record_id and self.admin.call("GET", f"/v1/{kind}s/{record_id}",
                                                      ok=(404,))
                if found and found.get(f"{kind}_id") == record_id:
                    made[item["key"]] = found
                    continue
                body = {**{k: v for k, v in item.items() if k != "key"},
                        "district_id": self.district_id}
                if kind not in waited:
                    self._await_district(f"/v1/{kind}s", body)
                    waited.add(kind)
                made[item["key"]] = self.admin.call("POST", f"/v1/{kind}s",
                                                    f"{kind}-{item['key']}", json=body)
        self._remember()

    def _known(self) -> dict[str, dict[str, str]]:
        try:
            return json.loads(self.state.read_text()) if self.state else {}
        except (OSError, ValueError):
            return {}

    def _remember(self) -> None:
        """Ids only (no token, nothing personal), in a 0600 file."""
        if self.state is None:
            return
        from deploy.private import write_private

        write_private(self.state, json.dumps({
            "venue": {k: v["venue_id"] for k, v in self.venues.items()},
            "school": {k: v["school_id"] for k, v in self.schools.items()}}))

    def _venue_sessions(self, venue_key: str) -> list[dict[str, Any]]:
        venue_id = self.venues[venue_key]["venue_id"]
        return _items(self.admin.call("GET", "/v1/sessions", params={
            "venue_id": venue_id, "status": "open,started,past,cancelled", "limit": 100}))

    def publish(self) -> None:
        for draft in sessions(self.today):
            existing = [s for s in self._venue_sessions(draft["venue"])
                        if s["title"] == draft["title"]]
            if not existing:
                body = {k: v for k, v in draft.items() if k not in ("venue", "key")}
                staff = self.venue_caller(draft["venue"])
                venue_id = self.venues[draft["venue"]]["venue_id"]
                staff.call("POST", f"/v1/venues/{venue_id}/sessions", f"session-{draft['key']}",
                           json=body)
                existing = [s for s in self._venue_sessions(draft["venue"])
                            if s["title"] == draft["title"]]
            self.sessions[draft["key"]] = sorted(existing, key=lambda s: s["starts_at"])

    def upload_rosters(self) -> None:
        """PUT replaces a class's roster: the same upload again changes nothing."""
        n = 0
        for school, label, _, _, _, pupils in CLASSES:
            rows = []
            for pupil, guardian, relation in pupils:
                n += 1
                rows.append({"name": pupil, "ref": f"2026{n:04d}", "guardians": [
                    {"name": guardian, "relation": relation, "phone": _guardian_phone(n),
                     "language": "zh-CN"}]})
            school_id = self.schools[school]["school_id"]
            self.school_caller(school).call(
                "PUT", f"/v1/schools/{school_id}/rosters/{label}", json={"pupils": rows})

    def claim(self) -> None:
        groups = {(s, label): {"label": label, "grade": grade, "students": students,
                               "teachers": teachers}
                  for s, label, grade, students, teachers, _ in CLASSES}
        for school, label, _, session_key in CLAIMS:
            session = self.sessions[session_key][0]
            client = self.school_caller(school)
            mine = _items(client.call("GET", "/v1/claims",
                                      params={"session_id": session["session_id"]}))
            if any(label in [g["label"] for g in c.get("groups", [])] for c in mine):
                continue
            client.call("POST", "/v1/claims", f"claim-{school}-{session_key}", ok=(409,),
                        json={"session_id": session["session_id"],
                              "groups": [groups[school, label]]})

    def book_tutor(self) -> None:
        museum = self.venues["museum"]["venue_id"]
        staff = self.venue_caller("museum")
        tutors = _items(staff.call("GET", f"/v1/venues/{museum}/tutors", params={"limit": 100}))
        self.tutor = next((t for t in tutors if t["name"] == TUTOR["name"]), None)
        if self.tutor is None:
            body = {**TUTOR, "certified_until": (self.today + timedelta(days=365)).isoformat()}
            self.tutor = staff.call("POST", f"/v1/venues/{museum}/tutors", "tutor-wang",
                                    json=body)
        school = self.school_caller("shuyuan")
        visits = _items(school.call("GET", "/v1/tutor-visits", params={"limit": 200}))
        if not any(v["tutor_id"] == self.tutor["tutor_id"] for v in visits):
            school.call("POST", "/v1/tutor-visits", "visit-wang-shuyuan", json={
                "tutor_id": self.tutor["tutor_id"], "hours": 2, "students": 36,
                "date": _next(2, self.today, weeks=1).isoformat(), "subject": "物理实验 电与磁"})

    def fund(self) -> None:
        """The term's fiscal subsidy and service fees, and the rate card tutors are paid by."""
        term = self.term
        funded = {b["source"]: b["funded_fen"] for b in _items(
            self.finance.call("GET", "/v1/funding/budgets", params={"term": term}))}
        for source, amount, memo in (("fiscal_subsidy", 50_000_000, "区财政科普专项拨款"),
                                     ("service_fees", 8_000_000, "场馆服务费收入")):
            if not funded.get(source):
                self.finance.call("POST", "/v1/funding/budgets/fund", f"fund-{term}-{source}",
                                  json={"term": term, "source": source, "amount_fen": amount,
                                        "memo": memo})
        if not _items(self.finance.call("GET", "/v1/funding/rate-cards")):
            start = date(self.today.year if self.today.month >= 2 else self.today.year - 1,
                         9 if term.endswith("autumn") else 2, 1)
            self.finance.call("POST", "/v1/funding/rate-cards", "rate-card", json={
                "effective_from": start.isoformat(),
                "rates": {"junior": 6_000, "intermediate": 8_000, "senior": 10_000,
                          "expert": 15_000},
                "cap_per_visit_fen": 40_000, "note": "每小时补贴（分）per hour, in fen"})


def welcome(url: str, demo: Demo | None, secret: str, tokens: bool,
            logins: list[demo_logins.Login] | None = None, var: Path = Path("var")) -> str:
    lines = [f"Kepu is up: {url}   (OpenAPI: {url}/v1/openapi.json)"]
    if demo is None:
        return "\n".join(lines)
    venue, school = demo.venues["museum"], demo.schools["shuyuan"]
    if logins:  # real people; passwords on the terminal only (and in var/demo-logins)
        lines += demo_logins.lines(logins, url, tokens, var)
    elif tokens:  # the terminal only: the supervisor writes this process's output to no file
        lines += [
            f"admin token:   {auth.mint(secret, 'admin', sub='demo-admin')}",
            f"venue token:   {demo.venue_caller('museum').token}   ({venue['name']})",
            f"school token:  {demo.school_caller('shuyuan').token}   ({school['name']})",
            f"finance token: {demo.finance.token}   ({DISTRICT}, {demo.district_id})",
            f"district token: {demo.caller('district', demo.district_id, 'demo-district').token}"
            f"   ({DISTRICT} supervision, read only)",
            f"try: curl -H 'Authorization: Bearer <school token>' '{url}/v1/sessions'",
        ]
    else:
        lines += ["a token: .venv/bin/python -m services.kit.cli token --role school "
                  f"--org {school['school_id']}",
                  f"then: curl -H 'Authorization: Bearer <token>' '{url}/v1/sessions'"]
    return "\n".join(lines)


def main() -> int:
    from deploy.stack import wait_healthy

    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--no-data", action="store_true")
    parser.add_argument("--tokens", action="store_true", help="print demo tokens (terminal)")
    args = parser.parse_args()
    secret = Settings.from_env().jwt_secret
    wait_healthy(args.url, timeout=180)
    var = Path(os.environ.get("KEPU_VAR_DIR", "var"))
    demo = None if args.no_data else Demo(args.url, secret, state=var / "demo.json").load()
    logins = demo_logins.ensure(demo, Settings.from_env(), var) if demo else None
    print(welcome(args.url, demo, secret, args.tokens, logins, var), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
