"""What others keep from venues' events: a moved claim window, a venue directory entry."""

from __future__ import annotations

from services.kit.outbox import pending
from services.venues.tests.conftest import staff
from services.venues.tests.helpers import at, publish


def last_event(collection, doc_id):
    return [env for _, env in pending(collection.find_one({"_id": doc_id}))][-1]


def test_a_moved_window_is_announced_with_the_current_window_and_policy(repo, venue):
    session = publish(repo, venue, claim_policy="window", window_closes_at=at(days=3))
    sid = session["session_id"]
    later = at(days=5)
    repo.sessions.change(sid, {"window_closes_at": later}, staff(venue["_id"]))
    env = last_event(repo.db.sessions, sid)
    assert env["type"] == "venues.session_updated"
    assert env["data"]["changed"] == ["window_closes_at"]
    assert (env["data"]["window_closes_at"], env["data"]["claim_policy"]) == (later, "window")
    repo.sessions.change(sid, {"title": "新标题"}, staff(venue["_id"]))
    env = last_event(repo.db.sessions, sid)
    assert (env["data"]["window_closes_at"], env["data"]["claim_policy"]) == (later, "window")


def test_venue_updated_carries_the_whole_directory_entry_and_its_version(repo, venue):
    place = {"lat": 31.1, "lon": 121.3}
    repo.update_venue(venue["_id"], {"name": "上海科技馆 新馆", "location": place,
                                     "address": "新地址1号"}, staff(venue["_id"]))
    first = last_event(repo.db.venues, venue["_id"])
    repo.update_venue(venue["_id"], {"kind": "planetarium"}, staff(venue["_id"]))
    second = last_event(repo.db.venues, venue["_id"])
    assert first["type"] == second["type"] == "venues.venue_updated"
    assert second["data"] == {
        "venue_id": venue["_id"], "name": "上海科技馆 新馆", "kind": "planetarium",
        "district": "浦东新区", "address": "新地址1号", "location": place,
        "timezone": "Asia/Shanghai", "version": 2, "district_id": None}
    assert first["data"]["version"] == 1
    assert repo.venue(venue["_id"])["version"] == 2
