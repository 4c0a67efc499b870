"""The stand-in's CPU per query shape (`bench.run --db-shapes`): keys, and a live server."""

from __future__ import annotations

import pymongo

from deploy.stack import private_mongo
from services.kit import mongo_shapes
from tests.support import wait_for


def test_a_shape_keeps_the_query_and_drops_its_data():
    msg = {"sections": [("body", {
        "find": "claims", "$db": "kepu_booking", "sort": {"due_at": 1},
        "filter": {"session_id": "ses_1", "holds.clm_th7y2z4duhnfv2fuo5l4yl": {"$exists": False},
                   "starts_at": {"$gt": "2026-12-02T06:00:00.000000Z"},
                   "status": {"$in": ["queued", "deferred"]}, "seats": 3}})]}
    assert mongo_shapes.key_of(msg) == (
        'kepu_booking.claims find {"holds.<id>": {"$exists": "bool"}, "seats": "int", '
        '"session_id": "str", "starts_at": {"$gt": "stamp"}, "status": {"$in": ["str"]}}'
        ' sort {"due_at": 1}')
    update = {"sections": [("body", {"update": "messages", "$db": "kepu_notifications"}),
                           ("payload", {"updates": [{"q": {"_id": "msg_1"},
                                                     "u": {"$set": {"x": 1}}}]})]}
    assert mongo_shapes.key_of(update) == 'kepu_notifications.messages update {"_id": "str"}'
    assert mongo_shapes.key_of({"sections": []}) == "(no body)"


def test_costliest_ranks_what_was_spent_between_two_readings():
    before = {"a": [10, 0.010], "b": [5, 0.5]}
    after = {"a": [30, 0.050], "b": [5, 0.5], "c": [2, 0.004]}
    assert mongo_shapes.costliest(before, after) == [
        {"shape": "a", "calls": 20, "cpu_ms": 40.0, "cpu_us_per_call": 2000},
        {"shape": "c", "calls": 2, "cpu_ms": 4.0, "cpu_us_per_call": 2000}]


def test_a_server_started_with_the_setting_writes_its_shapes(tmp_path, monkeypatch):
    shapes_file = tmp_path / "shapes.json"
    monkeypatch.setenv(mongo_shapes.ENV, str(shapes_file))
    with private_mongo(tmp_path / "mongo") as url:
        client = pymongo.MongoClient(url, serverSelectionTimeoutMS=20_000)
        try:
            coll = client.kepu_probe.items
            coll.insert_one({"_id": "a", "n": 1})
            for n in range(3):
                coll.find_one({"_id": "a", "n": {"$gte": n}})
            coll.update_one({"_id": "a"}, {"$inc": {"n": 1}})

            def recorded() -> dict[str, list[float]]:
                totals = mongo_shapes.read(shapes_file)
                wanted = ('kepu_probe.items find {"_id": "str", "n": {"$gte": "int"}}',
                          "kepu_probe.items insert", 'kepu_probe.items update {"_id": "str"}')
                return totals if all(key in totals for key in wanted) else {}

            totals = wait_for(recorded, timeout=20)
        finally:
            client.close()
    assert totals['kepu_probe.items find {"_id": "str", "n": {"$gte": "int"}}'][0] == 3
    assert totals["kepu_probe.items insert"][0] == 1
    assert all(cpu_s >= 0 for _, cpu_s in totals.values())
