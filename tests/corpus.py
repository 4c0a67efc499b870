"""What the fuzz target and the bad-input corpus share: a seeded world and the bad values.

`World` registers, through the public API, one of each record a path can name (a venue, a
school, a session, a tutor, a claim, a tutor visit, a roster, a funded term), in a district
of its own, and hands out a client per role acting for them: generated requests then reach
the services' real code paths instead of stopping at "no such session". The rest builds the
requests a careless or hostile client sends, each tagged with whether a correct server must
refuse it (a 4xx naming the field) or may take it (any answer but a 5xx).
"""

from __future__ import annotations

import copy
import json
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from marshmallow import Schema, fields, validate

from services.gateway.routing import Route
from tests.support import Api, Client

TERM = "2026-autumn"
_PARAM = re.compile(r"<(?:[a-z]+:)?([a-z_]+)>")


def iso(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).isoformat().replace("+00:00", "Z")


def day(delta_days: int) -> str:
    return (date.today() + timedelta(days=delta_days)).isoformat()


def openapi_path(path: str) -> str:
    """The route's werkzeug path as the OpenAPI document spells it: <venue_id> → {venue_id}."""
    return _PARAM.sub(r"{\1}", path)


def _created(response: Any, what: str) -> dict[str, Any]:
    assert response.status_code in (200, 201), (what, response.status_code, response.text)
    return response.json()


def session_draft(**overrides: Any) -> dict[str, Any]:
    return {"title": "星空探秘 Stargazing", "category": "science", "audience": "students",
            "grades": [1, 6], "starts_at": iso(timedelta(days=9)),
            "ends_at": iso(timedelta(days=9, hours=2)), "capacity": 500, "price_fen": 0,
            "claim_policy": "first_come", **overrides}


GROUP = {"label": "三年级一班", "grade": 3, "students": 30, "teachers": 2}
PUPILS = [{"name": "王小明", "guardians": [{"name": "王芳", "phone": "13800138000"}]}]


@dataclass
class World:
    """One of each record, and a client per role acting for them."""

    api: Api
    district: str = field(default_factory=lambda: f"fuzz-区-{uuid.uuid4().hex[:8]}")
    ids: dict[str, str] = field(default_factory=dict)
    clients: dict[str, Client] = field(default_factory=dict)

    @classmethod
    def seed(cls, api: Api) -> World:
        world = cls(api)
        world._register()
        world._book()
        world._fund()
        return world

    def _register(self) -> None:
        venue = self.api.register_venue(district=self.district)
        school = self.api.register_school(district=self.district)
        self.ids.update(venue_id=venue["venue_id"], school_id=school["school_id"])
        self.clients = {"admin": self.api.admin,
                        "venue": self.api.as_("venue", venue["venue_id"]),
                        "school": self.api.as_("school", school["school_id"]),
                        "finance": self.api.as_("finance", self.district),
                        "district": self.api.as_("district", self.district),
                        "anonymous": self.api.anonymous}

    def _book(self) -> None:
        venue, school = self.clients["venue"], self.clients["school"]
        vid = self.ids["venue_id"]
        session = _created(venue.post(f"/v1/venues/{vid}/sessions", json=session_draft()),
                           "session")
        tutor = _created(venue.post(f"/v1/venues/{vid}/tutors", json={
            "name": "李老师", "level": "senior", "subjects": ["astronomy"],
            "certified_until": "2030-12-31"}), "tutor")
        self.ids.update(session_id=session["session_id"], tutor_id=tutor["tutor_id"])
        claim = _created(school.post("/v1/claims", json={
            "session_id": session["session_id"], "groups": [GROUP]}), "claim")
        visit = _created(school.post("/v1/tutor-visits", json={
            "tutor_id": tutor["tutor_id"], "date": day(5), "hours": 2, "students": 30}),
            "tutor visit")
        self.ids.update(claim_id=claim["claim_id"], visit_id=visit["visit_id"], label="3-1")
        _created(school.put(f"/v1/schools/{self.ids['school_id']}/rosters/3-1",
                            json={"pupils": PUPILS}), "roster")

    def _fund(self) -> None:
        posting = _created(self.clients["finance"].post("/v1/funding/budgets/fund", json={
            "term": TERM, "source": "fiscal_subsidy", "amount_fen": 1_000_000,
            "memo": "fuzz seed"}), "funding")
        self.ids.update(term=TERM, posting_id=posting["posting_id"])
        statement = _created(self.clients["finance"].post(
            "/v1/funding/statements", data=b"reference,amount\nR1,1.00\n",
            headers={"Content-Type": "text/csv"}), "statement")
        accounts = self.clients["finance"].get("/v1/funding/accounts", params={"term": TERM})
        self.ids.update(statement_id=statement["statement_id"],
                        account_id=accounts.json()["items"][0]["account_id"])

    # -- who may call a route, and where ---------------------------------------------------
    def callers(self, roles: tuple[str, ...] | None) -> list[tuple[str, Client]]:
        """Every role the route admits, each acting for the world's own records."""
        if roles is None:
            return [("anonymous", self.clients["anonymous"])]
        return [(role, self.clients[role]) for role in roles]

    def path(self, route: Route) -> str:
        """The route's path with the world's ids in it (an unknown name gets a made-up id)."""
        return _PARAM.sub(lambda m: self.ids.get(m.group(1), f"x_{m.group(1)}"), route.path)


# -- valid bodies, one field of which each bad request spoils ------------------------------
def bases(world: World) -> dict[str, Callable[[], Any]]:
    """A valid body or query per schema name, acting on the world's records."""
    ids = world.ids
    venue = {"name": "上海科技馆", "kind": "science_museum", "district": world.district,
             "location": {"lat": 31.2196, "lon": 121.5447}, "address": "世纪大道2000号"}
    return {
        "ClaimRequest": lambda: {"session_id": ids["session_id"], "groups": [GROUP]},
        "BatchRequest": lambda: {"groups": [GROUP], "session_ids": [ids["session_id"]],
                                 "mode": "all_or_nothing"},
        "AttendanceRequest": lambda: {"records": [{"claim_id": ids["claim_id"],
                                                   "students": 20, "teachers": 1}]},
        "TutorVisitRequest": lambda: {"tutor_id": ids["tutor_id"], "date": day(6),
                                      "hours": 1.5, "students": 20, "subject": "天文"},
        "FundRequest": lambda: {"term": TERM, "source": "fiscal_subsidy", "amount_fen": 100,
                                "memo": "m", "reference": "r"},
        "TransferRequest": lambda: {"from_term": TERM, "from_source": "fiscal_subsidy",
                                    "to_term": TERM, "to_source": "service_fees",
                                    "amount_fen": 1, "memo": "m"},
        "RateCardRequest": lambda: {"effective_from": day(30), "rates": {"senior": 10000},
                                    "cap_per_visit_fen": 50000, "note": "n"},
        "VisitSelection": lambda: {"visit_ids": [ids["visit_id"]], "term": TERM},
        "PayoutRunRequest": lambda: {"term": TERM, "note": "n"},
        "RosterUpload": lambda: {"pupils": copy.deepcopy(PUPILS)},
        "ConsentAnswer": lambda: {"answer": "yes", "guardian_name": "王芳", "note": "n"},
        "SurveyAnswer": lambda: {"ratings": {"content": 5, "organisation": 4, "safety": 5},
                                 "comment": "讲解生动"},
        "SurveyQuery": lambda: {"lang": "en"},
        "SurveyListQuery": lambda: {"state": "all", "lang": "zh-CN", "limit": 10},
        "VenueRegistration": lambda: copy.deepcopy(venue),
        "SchoolRegistration": lambda: {"name": "实验小学", "district": world.district,
                                       "location": {"lat": 31.23, "lon": 121.52},
                                       "students": 800},
        "VenueChange": lambda: {"name": "上海科技馆", "location": {"lat": 31.2, "lon": 121.5},
                                "contact": {"name": "张", "email": "a@example.org"}},
        "SessionDraft": lambda: session_draft(
            claim_policy="window", window_closes_at=iso(timedelta(days=2)),
            min_teachers_per_students={
                "teachers": 1, "per_students": 20}, repeat={"dates": [day(20)]}),
        "SessionChange": lambda: {"title": "新标题", "capacity": 400},
        "TutorRegistration": lambda: {"name": "张老师", "level": "junior",
                                      "subjects": ["biology"], "certified_until": day(400)},
        "TutorChange": lambda: {"level": "expert", "subjects": ["physics"]},
        "BudgetQuery": lambda: {"term": TERM},
        "DrillDown": lambda: {"category": "science", "grade": 3, "week": day(0)},
        "ExportQuery": lambda: {"view": "schools", "category": "tutor_visit", "week": day(0)},
        "SchoolQuery": lambda: {"limit": 10},
        "VenueQuery": lambda: {"kind": "science_museum", "limit": 10},
        "ConsentProgressQuery": lambda: {"claim_ids": ids["claim_id"]},
        "PeopleQuery": lambda: {"ids": "usr_nobody"},
        **identity_bases(world),
        **admissions_bases(world),
    }


def admissions_bases(world: World) -> dict[str, Callable[[], Any]]:
    """Admissions' bodies: a family's code, pass and booking, training seats, a check-in."""
    return {
        "CodeRequest": lambda: {"mobile": "13800138000"},
        "CodeCheck": lambda: {"mobile": "13800138000", "code": "123456"},
        "FamilyBookingRequest": lambda: {"verification": "x" * 40 + "." + "y" * 43,
                                         "adults": 1, "children": 1, "child_names": ["小明"]},
        "TrainingBookingRequest": lambda: {"attendees": [{"name": "王老师",
                                                          "subject": "科学"}]},
        "CheckInRequest": lambda: {"code": "ABCDEFGH", "method": "cash"},
        "TakingsQuery": lambda: {"day": day(0), "format": "json"},
        "RegisterQuery": lambda: {"limit": 10},
    }


def identity_bases(world: World) -> dict[str, Callable[[], Any]]:
    """Identity's bodies: sign-in and links under the world's own identifier (its few
    failed sign-ins stay under the throttle's free allowance), invitations and API keys
    for the world's school."""
    school, tag = world.ids.get("school_id", "x_school_id"), world.district.rsplit("-", 1)[-1]
    token = "inv_" + "0" * 16 + "." + "x" * 43
    return {
        "LoginBody": lambda: {"identifier": f"fuzz-{tag}@kepu.test", "password": "x" * 12},
        "RefreshBody": lambda: {"refresh_token": "rt_" + "x" * 43},
        "LogoutBody": lambda: {"refresh_token": "rt_" + "x" * 43, "everywhere": False},
        "SwitchBody": lambda: {"role": "admin", "org_id": None},
        "PasswordResetRequestBody": lambda: {"identifier": f"fuzz-{tag}@kepu.test"},
        "PasswordResetBody": lambda: {"token": token, "password": "a-long-pass-phrase"},
        "AcceptanceBody": lambda: {"token": token, "password": "a-long-pass-phrase",
                                   "display_name": "王芳", "language": "zh-CN"},
        "Invitation": lambda: {"email": f"invitee-{tag}@kepu.test", "role": "school",
                               "org_id": school, "manager": False,
                               "language": "zh-CN", "display_name": "王老师"},
        "DistrictRegistration": lambda: {"name": f"测试区-{tag}",
                                         "code": f"F{uuid.uuid4().hex[:8]}",
                                         "timezone": "Asia/Shanghai"},
        "ApiKeyRequest": lambda: {"name": "教务系统", "org_id": school,
                                  "role": "school", "expires_at": None},
    }


# Collections a refused request writes to by design: the audit trail records every
# state-changing request whatever its outcome, and the sign-in throttle counts failures.
RECORDS_OF_REFUSALS = ("kepu_identity.audit", "kepu_identity.throttle")
# Databases no request writes to: monitoring is a read model fed only by the producers'
# events (each one a write the producer's own collections show), folded on a timer up to
# 10 s later, so its counts would move with earlier tests' events, not with this request.
READ_MODELS = ("kepu_monitoring",)


def sample(schema: type[Schema]) -> dict[str, Any]:
    """A body for a schema without a base above: its required fields, plainly filled."""
    out: dict[str, Any] = {}
    for key, f in schema_fields(schema).items():
        if f.required:
            out[key] = _plain(f)
    return out


def _plain(f: fields.Field) -> Any:
    choices = [v.choices for v in f.validators if isinstance(v, validate.OneOf)]
    if choices:
        return list(choices[0])[0]
    if isinstance(f, fields.Nested):
        return sample(type(f.schema))
    if isinstance(f, fields.List):
        return [_plain(f.inner)]
    if isinstance(f, fields.Boolean):
        return False
    if isinstance(f, fields.Number):
        low = [v.min for v in f.validators if isinstance(v, validate.Range) and v.min]
        return max(low or [1])
    if isinstance(f, fields.Date):
        return day(10)
    return "x"


# -- the bad values -----------------------------------------------------------------------
@dataclass(frozen=True)
class Bad:
    """One bad value: `refuse` says a correct server must refuse it, naming the field."""

    label: str
    value: Any = None
    refuse: bool = True
    raw: str | None = None  # a JSON literal json.dumps will not write (10**400, NaN)
    whole: bool = False  # refused as a body (too deep), before any field is read


HUGE = "界" * 100_000
SURROGATE = "\ud800"
TIMES = (Bad("year 271", "0271-05-01T09:00:00+08:00"), Bad("year 500", "0500-05-01T09:00:00Z"),
         Bad("year 99999", "99999-05-01T09:00:00Z"), Bad("2026-13-45", "2026-13-45T09:00:00Z"),
         Bad("no offset", "2026-05-01T09:00:00"),
         Bad("year 9999", "9999-12-31T23:59:59-12:00", refuse=False))
DATES = (Bad("year 271", "0271-05-01"), Bad("year 500", "0500-05-01"),
         Bad("year 99999", "99999-05-01"), Bad("2026-13-45", "2026-13-45"),
         Bad("year 1", "0001-01-01"), Bad("year 9999", "9999-12-31", refuse=False))
TEXTS = (Bad("lone surrogate", SURROGATE + "abc"), Bad("NUL", "a\x00b", refuse=False),
         Bad("right-to-left marks", "\u202eabc\u200f", refuse=False),
         Bad("emoji", "🔭🚀👩‍🔬", refuse=False))
TIME_FIELDS = ("Instant", "SessionTime", "DayOrInstant")


def _range_refuses(f: fields.Field, x: float) -> bool:
    ranges = [v for v in f.validators if isinstance(v, validate.Range)]
    return any((r.min is not None and x < r.min) or (r.max is not None and x > r.max)
               for r in ranges)


def _numbers(f: fields.Field) -> list[Bad]:
    out = [Bad("string", "many"), Bad("list", [1]), Bad("object", {"$gt": 0}),
           Bad("boolean", True)]
    for label, x in (("1e308", 1e308), ("-1", -1), ("-10**30", -10**30), ("2**63", 2**63)):
        out.append(Bad(label, x, refuse=_range_refuses(f, x)))
    out.append(Bad("10**400", refuse=_range_refuses(f, 1e308), raw=str(10**400)))
    out += [Bad(lit, raw=lit, whole=True) for lit in ("NaN", "Infinity", "-Infinity")]  # not JSON
    out.append(Bad("1e400", raw="1e400"))  # JSON, but no float holds it
    if isinstance(f, fields.Integer):
        out.append(Bad("1.5", 1.5))
    return out


def _text(f: fields.Field) -> list[Bad]:
    strict = any(isinstance(v, validate.OneOf | validate.Regexp | validate.Email)
                 for v in f.validators) or isinstance(f, fields.Email)
    limited = any(isinstance(v, validate.Length) and v.max for v in f.validators)
    out = [Bad("number", 12345), Bad("list", ["x"]), Bad("object", {"$ne": None}),
           Bad("boolean", False)]
    out += [Bad(b.label, b.value, refuse=b.refuse or strict) for b in TEXTS]
    out.append(Bad("100k characters", HUGE, refuse=strict or limited))
    return out


def bad_values(f: fields.Field) -> list[Bad]:
    """The bad values worth sending to a body field of this kind."""
    nulls = [Bad("null", None, refuse=f.required and not f.allow_none)]  # optional: as absent
    if isinstance(f, fields.Nested | fields.Dict | fields.List):
        other = Bad("list", ["x"]) if not isinstance(f, fields.List) else Bad("object", {})
        return [*nulls, Bad("number", 7), Bad("string", "x"), other,
                Bad("nested 50 deep", _deep(50), whole=True)]
    if isinstance(f, fields.Boolean):
        return [*nulls, Bad("string", "perhaps"), Bad("number", 2), Bad("list", [True])]
    if isinstance(f, fields.Number):
        return nulls + _numbers(f)
    if isinstance(f, fields.Date):
        return [*nulls, Bad("number", 20260501), Bad("list", ["2026-05-01"]), *DATES]
    if type(f).__name__ in TIME_FIELDS or isinstance(f, fields.DateTime):
        return [*nulls, Bad("number", 1760000000), Bad("object", {}), *TIMES]
    return nulls + _text(f)


def _deep(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = [value]
    return value


def schema_fields(schema: type[Schema] | Schema) -> dict[str, fields.Field]:
    """The schema's fields by the name a client sends (data_key)."""
    instance = schema() if isinstance(schema, type) else schema
    return {f.data_key or name: f for name, f in instance.fields.items()}


def points(schema: type[Schema] | Schema, prefix: str = "") -> Iterator[tuple[str, fields.Field]]:
    """Every field a body can spoil, as the dotted path a problem names: groups.0.students."""
    for key, f in schema_fields(schema).items():
        path = prefix + key
        yield path, f
        if isinstance(f, fields.Nested):
            yield from points(f.schema, path + ".")
        elif isinstance(f, fields.List) and isinstance(f.inner, fields.Nested):
            yield from points(f.inner.schema, path + ".0.")
        elif isinstance(f, fields.List):
            yield path + ".0", f.inner


def spoil(body: Any, path: str, value: Any) -> Any:
    """A copy of `body` with the field at the dotted `path` set to `value`."""
    out = copy.deepcopy(body)
    parts = path.split(".")
    node = out
    for i, part in enumerate(parts[:-1]):
        nxt: Any = [] if parts[i + 1].isdigit() else {}
        if part.isdigit():
            while len(node) <= int(part):
                node.append(nxt)
            node = node[int(part)]
        else:
            node = node.setdefault(part, nxt)
    last = parts[-1]
    if last.isdigit():
        while len(node) <= int(last):
            node.append(None)
        node[int(last)] = value
    else:
        node[last] = value
    return out


RAW = "\u0001raw\u0001"


def encode(body: Any, raw: str | None = None) -> bytes:
    """The JSON text of `body`, with the placeholder RAW replaced by a raw literal."""
    text = json.dumps(body)  # ensure_ascii: a lone surrogate travels as the escape "\ud800"
    if raw is not None:
        text = text.replace(json.dumps(RAW), raw)
    return text.encode()


@dataclass(frozen=True)
class Request:
    """One bad request and what a correct gateway answers it with."""

    label: str
    field: str | None  # the field the problem must name; None: the body as a whole
    refuse: bool
    data: bytes | None = None
    params: dict[str, str] | None = None
    content_type: str = "application/json"
    path: str | None = None  # another path than the world's, e.g. a spoiled id in it


def body_requests(schema: type[Schema], base: Any) -> list[Request]:
    """Each field spoiled in turn, then the body's own shape spoiled."""
    out = []
    for path, f in points(schema):
        for bad in bad_values(f):
            value = RAW if bad.raw is not None else bad.value
            out.append(Request(f"{path}={bad.label}", None if bad.whole else path, bad.refuse,
                               encode(spoil(base, path, value), bad.raw)))
    out.append(Request("unknown field", "zz_unknown", True,
                       encode({**base, "zz_unknown": 1})))
    out.append(Request("operator key", "$where", True, encode({**base, "$where": "1"})))
    for label, data in WHOLE_BODIES:
        out.append(Request(label, None, True, data))
    return out


WHOLE_BODIES = (
    ("array body", b"[]"), ("string body", b'"x"'), ("number body", b"12"),
    ("null body", b"null"), ("truncated JSON", b'{"a": '), ("not UTF-8", b'{"\xff": 1}'),
    ("deeply nested", b"[" * 100_000 + b"]" * 100_000),
    ("deeply nested objects", b'{"a":' * 50_000 + b"1" + b"}" * 50_000),
    ("lone surrogate key", b'{"\\ud800": 1}'),
    ("NUL key", b'{"a\\u0000b": 1}'),
)


def query_values(f: fields.Field) -> list[Bad]:
    """The bad values worth sending to a query parameter of this kind (always text)."""
    if isinstance(f, fields.Number):
        return [Bad("word", "many"), Bad("1e308", "1e308", refuse=isinstance(f, fields.Integer)
                                         or _range_refuses(f, 1e308)),
                Bad("400 digits", "9" * 400), Bad("-1", "-1", refuse=_range_refuses(f, -1)),
                Bad("NaN", "NaN"), Bad("Infinity", "Infinity"), Bad("empty", ""),
                *([Bad("1.5", "1.5")] if isinstance(f, fields.Integer) else [])]
    if isinstance(f, fields.Boolean):
        return [Bad("word", "perhaps"), Bad("number", "2")]
    if isinstance(f, fields.Date) or type(f).__name__ in TIME_FIELDS:
        return [*DATES, *TIMES[:3], Bad("word", "soon")]
    if type(f).__name__ == "Near":
        return [Bad("NaN", "nan,nan"), Bad("Infinity", "inf,-inf"), Bad("word", "here"),
                Bad("one number", "31.2")]
    strict = any(isinstance(v, validate.OneOf | validate.Regexp) for v in f.validators)
    limited = any(isinstance(v, validate.Length) and v.max and v.max < 3000
                  for v in f.validators)
    return [Bad("NUL", "a\x00b", refuse=strict), Bad("emoji", "🔭🚀", refuse=strict),
            Bad("right-to-left marks", "\u202eabc", refuse=strict),
            Bad("3000 characters", "x" * 3000, refuse=strict or limited),
            Bad("operator", "{\"$ne\": null}", refuse=strict)]


def query_requests(schema: type[Schema], base: dict[str, Any]) -> list[Request]:
    out = []
    for key, f in schema_fields(schema).items():
        for bad in query_values(f):
            out.append(Request(f"{key}={bad.label}", key, bad.refuse,
                               params={**base, key: bad.value}))
    out.append(Request("unknown parameter", "zz_unknown", True,
                       params={**base, "zz_unknown": "1"}))
    return out


STATEMENT_HEADER = "reference,amount,date,payee,memo\n"
STATEMENTS = (  # (what, the CSV, whether it must be refused)
    ("amount of 5000 digits", STATEMENT_HEADER + "R1," + "9" * 5000 + ",2026-05-01,李,m\n", True),
    ("amount NaN", STATEMENT_HEADER + "R1,NaN,2026-05-01,李,m\n", True),
    ("amount 1e400", STATEMENT_HEADER + "R1,1e400,2026-05-01,李,m\n", True),
    ("date year 271", STATEMENT_HEADER + "R1,1.00,0271-05-01,李,m\n", False),
    ("date 2026-13-45", STATEMENT_HEADER + "R1,1.00,2026-13-45,李,m\n", False),
    ("NUL in a cell", STATEMENT_HEADER + "R\x001,1.00,2026-05-01,李,m\n", False),
    ("reference of 100k characters", STATEMENT_HEADER + "R" * 100_000 + ",1.00,,,\n", True),
    ("no amount column", "reference,date\nR1,2026-05-01\n", True),
    ("open quote", STATEMENT_HEADER + '"R1,1.00\n', False),
)


def statement_requests() -> list[Request]:
    out = [Request(label, None, refuse, text.encode(), content_type="text/csv")
           for label, text, refuse in STATEMENTS]
    out.append(Request("not UTF-8", None, True, b"reference,amount\n\xff\xfe,1\n",
                       content_type="text/csv"))
    return out


BAD_IDS = (("NUL", "a%00b"), ("surrogate bytes", "%ED%A0%80"), ("not UTF-8", "%FF%FE"),
           ("emoji", "🔭"), ("3000 characters", "x" * 3000), ("operator", "$ne"),
           ("dot dot", ".."))


def path_requests(route: Route, world: World, data: bytes | None) -> list[Request]:
    """Each path parameter spoiled in turn (with a valid body): any answer but a 5xx."""
    out = []
    for name in _PARAM.findall(route.path):
        ids = {**world.ids}
        for label, value in BAD_IDS:
            ids[name] = value
            path = _PARAM.sub(lambda m, ids=ids: ids.get(m.group(1), "x"), route.path)
            out.append(Request(f"path {name}={label}", None, False, data=data, path=path))
    return out


def requests_for(route: Route, world: World) -> list[Request]:
    """Every bad request the corpus sends to one route."""
    made = bases(world)
    out: list[Request] = []
    data = None
    if route.body is not None:
        base = made.get(route.body.__name__, lambda: sample(route.body))()
        out += body_requests(route.body, base)
        data = encode(base)
    elif route.content_types == ("text/csv",):
        out += statement_requests()
    if route.query is not None:
        query = route.query
        out += query_requests(query, made.get(query.__name__, lambda: sample(query))())
    return out + path_requests(route, world, data)


def server_log(log_dir: Path, request_id: str, keep: int = 6) -> str:
    """The stack's log lines (tracebacks included) for one request id: where a 5xx came from."""
    lines = []
    for path in sorted(log_dir.glob("*.log")):
        for line in path.read_text(errors="replace").splitlines():
            if request_id and request_id in line:
                lines.append(f"{path.name}: {_readable(line)}")
    return "\n".join(lines[-keep:])


def _readable(line: str) -> str:
    """A JSON log line as its message and traceback, cut to the end that matters."""
    try:
        record = json.loads(line)
    except ValueError:
        return line[:2000]
    trace = [line[:300] for line in (record.get("exc_info") or "").splitlines()]
    return "\n".join([str(record.get("message", ""))[:300], *trace[-40:]])
