"""Every route, fed what careless and hostile clients send, answers a named 4xx, never a 5xx,
and a refused request writes nothing.

For each route of the gateway's table (services.gateway.routes.all_routes), each field of its
JSON body or query is spoiled in turn — wrong types, 100k-character strings, lone surrogates,
NUL, right-to-left marks, emoji, years 271/500/99999, 2026-13-45, -1, 1e308, 10**400, NaN,
unknown fields, deep nesting — inside an otherwise valid request acting on a seeded world
(tests/corpus.py). A value no correct server takes must come back as a 400/422
problem+json naming that field; a value a server may take (emoji in a title) may succeed,
but must never be a 5xx. Around the refused requests of a route, every collection of every
service database is counted: a refusal that leaves a document behind is a half-written state.
"""

from __future__ import annotations

from typing import Any

import pymongo
import pytest
import requests

from services.gateway.routes import all_routes
from services.gateway.routing import Route
from services.kit import outbox
from services.kit.boundary import load
from services.kit.config import Settings
from tests import corpus
from tests.corpus import Request, World
from tests.support import Client, wait_for

pytestmark = pytest.mark.stack

DESTRUCTIVE = ("/cancel", "/discard", "/reverse", "/approve", "/export")


def _order(route: Route) -> tuple[bool, str]:
    """Routes that end the world's records (cancel a session, a claim) run last."""
    return (route.path.endswith(DESTRUCTIVE), route.path)


ROUTES = sorted(all_routes(), key=_order)


class Counts:
    """Documents per collection across the stack's databases (kepu_venues, kepu_booking…)."""

    def __init__(self, mongo_url: str, settings: Settings) -> None:
        self.client = pymongo.MongoClient(mongo_url)
        self.prefix = settings.database("")

    def snapshot(self) -> dict[str, int]:
        out = {}
        for name in self.client.list_database_names():
            if not name.startswith(self.prefix) or name in corpus.READ_MODELS:
                continue
            db = self.client[name]
            for collection in db.list_collection_names():
                if f"{name}.{collection}" not in corpus.RECORDS_OF_REFUSALS:
                    out[f"{name}.{collection}"] = db[collection].count_documents({})
        return out

    def settled(self) -> dict[str, int]:
        """A snapshot once background work (relay, event handlers) has stopped writing."""
        last: dict[str, Any] = {"value": None}

        def still() -> dict[str, int] | None:
            now = self.snapshot()
            same = now == last["value"] and not self.relaying()
            last["value"] = now
            return now if same else None

        return wait_for(still, timeout=30, interval=0.3, message="the databases to settle")

    def relaying(self) -> bool:
        """An outbox entry not yet relayed: its event's consumers are still to write (the
        relay may wait up to a second on a quiet collection)."""
        return outbox.unrelayed(self.client, self.prefix)

    def close(self) -> None:
        self.client.close()


@pytest.fixture(scope="module")
def world(api) -> World:
    return World.seed(api)


@pytest.fixture(scope="module")
def counts(stack, settings_env):
    counter = Counts(settings_env["MONGO_URL"], Settings.from_env(settings_env))
    yield counter
    counter.close()


def send(client: Client, route: Route, request: Request, path: str) -> requests.Response:
    headers = {"Content-Type": request.content_type} if request.data is not None else {}
    return client.request(route.method, request.path or path, data=request.data,
                          params=request.params, headers=headers)


def names(problem: dict[str, Any], field: str) -> bool:
    """Whether a problem names `field` (or its parent, or a field inside it)."""
    keys = [str(k) for k in (problem.get("errors") or {})]
    if any(k == field or k.startswith(field + ".") or field.startswith(k + ".") for k in keys):
        return True
    return field in str(problem.get("detail", ""))


def verdict(request: Request, response: requests.Response) -> str | None:
    """What is wrong with the answer to `request`, or None."""
    status = response.status_code
    text = response.text[:600]
    where = f"request id {response.headers.get('X-Request-Id')}"
    if status >= 500:
        return f"{status} ({where}): {text}"
    if request.refuse and status not in (400, 422):
        return f"taken: {status} instead of a 400/422 refusal: {text}"
    if status < 400:
        return None
    if not response.headers.get("Content-Type", "").startswith("application/problem+json"):
        return f"{status} is not problem+json: {response.headers.get('Content-Type')}: {text}"
    if request.refuse and request.field is not None and not names(response.json(),
                                                                  request.field):
        return f"{status} does not name {request.field!r}: {text}"
    return None


def _show(request: Request) -> str:
    if request.params is not None:
        sent = {k: (v if len(v) < 80 else f"{v[:40]}…({len(v)} chars)")
                for k, v in request.params.items()}
        return f"query {sent}"
    if request.data is None:
        return f"path {request.path or ''}"[:200]
    data = request.data.decode("utf-8", "replace")
    return f"body {data[:300]}{'…' if len(data) > 300 else ''}"


def _written(before: dict[str, int], after: dict[str, int]) -> dict[str, tuple[int, int]]:
    return {k: (before.get(k, 0), n) for k, n in after.items() if n != before.get(k, 0)}


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.path}")
def test_bad_input_gets_a_named_4xx_and_writes_nothing(route, world, counts, stack):
    role, client = world.callers(route.roles)[0]
    path = world.path(route)
    bad = sorted(corpus.requests_for(route, world), key=lambda r: not r.refuse)  # refusals first
    last_refusal = max((i for i, r in enumerate(bad) if r.refuse), default=-1)
    findings = []
    before = counts.settled()
    for i, request in enumerate(bad):
        response = send(client, route, request, path)
        wrong = verdict(request, response)
        if wrong:
            findings.append(f"- {request.label} as {role}: {wrong}\n    sent {_show(request)}")
        if response.status_code >= 500:
            findings.append(corpus.server_log(stack.log_dir,
                                              response.headers.get("X-Request-Id", "")))
        if request.refuse and response.status_code < 400:
            before = counts.settled()  # what it wrote is reported above as taken
        if i == last_refusal:
            written = _written(before, counts.snapshot())
            if written:
                findings.append(f"- refused requests left documents behind (before, after): "
                                f"{written}")
    assert not findings, (f"{route.method} {path}: {len(findings)} finding(s) of {len(bad)} "
                          "bad requests\n" + "\n".join(findings))


def test_each_base_is_valid_so_each_bad_request_spoils_one_thing():
    """A base the schema refuses would make every 'named field' check vacuous."""
    world = World(api=None, district="d")  # no calls: only the ids the bases name
    world.ids = {name: f"x_{name}" for name in ("session_id", "claim_id", "tutor_id",
                                                "visit_id")}
    made = corpus.bases(world)
    schemas = {s for r in ROUTES for s in (r.body, r.query) if s is not None}
    for schema in schemas:
        base = made.get(schema.__name__, lambda s=schema: corpus.sample(s))()
        load(schema, base)
    assert {s.__name__ for s in schemas if s.__name__ not in made} <= SAMPLED


SAMPLED = {"CancelRequest", "ReverseRequest", "RecoverRequest", "SessionCancellation",
           "ClaimQuery", "TutorVisitQuery", "AccountQuery", "BalanceQuery", "EntryQuery",
           "RateCardQuery", "AccrualQuery", "PayoutRunQuery", "PayoutLineQuery",
           "StatementQuery", "FindingQuery", "ReportCsvQuery", "NotificationsQuery",
           "ConsentQuery", "CatalogueQuery", "TutorQuery", "InvitationQuery", "MemberQuery",
           "ApiKeyQuery", "AuditQuery", "DistrictQuery"}  # all-optional or one plain text
