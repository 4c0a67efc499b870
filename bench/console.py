"""The console's figures (`make bench`; docs/performance.md): server-side render time of each
main page, p50/p95, on the bench's data (a venue with 50 sessions, 1,000 schools with their
claims), target p95 ≤ 200 ms.

Render time is what the console itself reports in `Server-Timing: app;dur=…` — from the
request reaching the console to the page being ready, the /v1 calls it makes included (their
share is `api;dur=…`). People sign in through the console's own form, as a browser would.

    python -m bench.console --url URL --amqp AMQP_URL --venue VEN --school SCH
      (KEPU_JWT_SECRET must be the stack's)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import uuid
from typing import Any

import requests

from bench.percentiles import pct
from services.kit import auth
from services.kit.actor import Actor, actor_key, sign
from services.kit.rpc_client import RpcClient

ROUNDS = 30
PASSWORD = "bench-console-2026!"
TIMING = re.compile(r"app;dur=([0-9.]+)")
API = re.compile(r"api;dur=([0-9.]+)")


def provision(amqp_url: str, secret: str, role: str, org: str | None) -> str:
    identifier = f"bench-{role}-{uuid.uuid4().hex[:6]}@example.cn"
    rpc = RpcClient(amqp_url, timeout=30)
    try:
        rpc.call("identity", "provision", {
            "identifier": identifier, "password": PASSWORD, "display_name": f"bench {role}",
            "role": role, "org_id": org, "manager": True},
            actor=sign(Actor("bench", "admin"), actor_key(secret)))
    finally:
        rpc.close()
    return identifier


def signed_in(url: str, identifier: str) -> requests.Session:
    browser = requests.Session()
    page = browser.get(f"{url}/login", timeout=30).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    answer = browser.post(f"{url}/login", data={"identifier": identifier, "password": PASSWORD,
                                                "csrf_token": token},
                          allow_redirects=False, timeout=30)
    if answer.status_code != 303:
        raise RuntimeError(f"console sign-in failed: {answer.status_code}")
    return browser


def time_page(browser: requests.Session, url: str, rounds: int = ROUNDS
              ) -> dict[str, float]:
    app, api = [], []
    for _ in range(rounds):
        answer = browser.get(url, timeout=60, headers={"Accept": "text/html"})
        if answer.status_code != 200:
            raise RuntimeError(f"{url}: {answer.status_code}")
        header = answer.headers.get("Server-Timing", "")
        app.append(float(TIMING.search(header).group(1)))
        api.append(float(API.search(header).group(1)))
    return {"p50_ms": round(pct(app, 50), 1), "p95_ms": round(pct(app, 95), 1),
            "api_p50_ms": round(pct(api, 50), 1)}


def measure(url: str, amqp_url: str, secret: str, venue_id: str, school_id: str,
            session_id: str | None = None) -> dict[str, Any]:
    """Render times of the main pages, one signed-in person per role."""
    admin = requests.Session()
    admin.headers["Authorization"] = f"Bearer {auth.mint(secret, 'admin', None, 'bench')}"
    district = admin.post(f"{url}/v1/districts", json={
        "name": f"bench-{uuid.uuid4().hex[:6]}", "code": uuid.uuid4().hex[:8]}, timeout=30)
    district_id = district.json().get("district_id") if district.status_code == 201 else None
    venue = signed_in(url, provision(amqp_url, secret, "venue", venue_id))
    school = signed_in(url, provision(amqp_url, secret, "school", school_id))
    pages: dict[str, tuple[requests.Session, str]] = {
        "venue: upcoming sessions": (venue, "/venue/"),
        "school: course menu, 10 km": (school, "/school/?km=10"),
        "school: course menu, week": (school, "/school/?view=week"),
        "school: my claims": (school, "/school/claims"),
        "school: rosters": (school, "/school/rosters"),
        "sign-in page": (requests.Session(), "/login"),
    }
    if session_id:
        pages["venue: a session with its claims"] = (venue, f"/venue/sessions/{session_id}")
        pages["school: claim form"] = (school, f"/school/sessions/{session_id}/claim")
    if district_id:
        finance = signed_in(url, provision(amqp_url, secret, "finance", district_id))
        pages["finance: budgets"] = (finance, "/finance/")
        pages["finance: accruals"] = (finance, "/finance/accruals")
    return {"console_pages": {name: time_page(who, url + path)
                              for name, (who, path) in pages.items()}}


def table(report: dict[str, Any]) -> list[tuple[str, Any]]:
    rows = []
    for name, figures in (report.get("console_pages") or {}).items():
        rows.append((f"console {name}: render p50 / p95 ms",
                     f"{figures['p50_ms']} / {figures['p95_ms']} (API {figures['api_p50_ms']})"))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--amqp", required=True)
    parser.add_argument("--venue", required=True)
    parser.add_argument("--school", required=True)
    parser.add_argument("--session")
    args = parser.parse_args()
    report = measure(args.url, args.amqp, os.environ["KEPU_JWT_SECRET"], args.venue,
                     args.school, args.session)
    print(json.dumps(report, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
