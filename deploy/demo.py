"""Loads a small demo data set through the public API and prints ready-to-use tokens.

Runs as the `welcome` process of `make run`: waits for /healthz, registers a few venues
and schools (with fixed Idempotency-Keys, so a restart within two days adds nothing),
prints the gateway URL and tokens for an admin, a venue, a school and finance staff,
then stays up so that honcho keeps the stack running.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Any

import requests

from deploy.stack import wait_healthy
from services.kit import auth
from services.kit.config import Settings

VENUES = [
    {"name": "上海科技馆 Shanghai Science and Technology Museum", "kind": "science_museum",
     "district": "浦东新区", "location": {"lat": 31.2196, "lon": 121.5447},
     "address": "上海市浦东新区世纪大道2000号", "accessibility": "Step-free entrances; lifts."},
    {"name": "上海天文馆 Shanghai Astronomy Museum", "kind": "planetarium",
     "district": "浦东新区", "location": {"lat": 30.8997, "lon": 121.9059},
     "address": "上海市浦东新区临港大道380号"},
    {"name": "上海动物园 Shanghai Zoo", "kind": "zoo", "district": "长宁区",
     "location": {"lat": 31.1925, "lon": 121.3611}, "address": "上海市长宁区虹桥路2381号"},
]
SCHOOLS = [
    {"name": "浦东新区实验小学", "district": "浦东新区",
     "location": {"lat": 31.2304, "lon": 121.5200}, "rural": False,
     "under_resourced": False, "students": 1200},
    {"name": "书院镇中心小学", "district": "浦东新区",
     "location": {"lat": 30.9600, "lon": 121.8500}, "rural": True,
     "under_resourced": True, "students": 420},
]


def load(url: str, admin: str) -> dict[str, list[dict[str, Any]]]:
    headers = {"Authorization": f"Bearer {admin}"}
    made: dict[str, list[dict[str, Any]]] = {"venues": [], "schools": []}
    for kind, items in (("venues", VENUES), ("schools", SCHOOLS)):
        for i, item in enumerate(items):
            response = requests.post(f"{url}/v1/{kind}", json=item, timeout=30,
                                     headers={**headers, "Idempotency-Key": f"demo-{kind}-{i}"})
            response.raise_for_status()
            made[kind].append(response.json())
    return made


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--no-data", action="store_true")
    args = parser.parse_args()
    settings = Settings.from_env()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())

    wait_healthy(args.url, timeout=180)
    admin = auth.mint(settings.jwt_secret, "admin", sub="demo-admin")
    lines = [f"Kepu is up: {args.url}   (OpenAPI: {args.url}/v1/openapi.json)"]
    if not args.no_data:
        made = load(args.url, admin)
        venue, school = made["venues"][0], made["schools"][0]
        lines += [
            f"admin token:   {admin}",
            f"venue token:   {auth.mint(settings.jwt_secret, 'venue', venue['venue_id'])}"
            f"   ({venue['name']})",
            f"school token:  {auth.mint(settings.jwt_secret, 'school', school['school_id'])}"
            f"   ({school['name']})",
            f"finance token: {auth.mint(settings.jwt_secret, 'finance', 'district-pudong')}",
            f"try: curl -H 'Authorization: Bearer <token>' {args.url}/v1/sessions",
        ]
    print("\n".join(lines), flush=True)
    done.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
