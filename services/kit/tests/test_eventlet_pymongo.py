"""pymongo 4.20 under eventlet's monkey-patching, as every nameko service runs it.

Runs in a subprocess so the patching cannot leak into the test process: 40 green threads
share one client and race conditional updates; the counts must come out exact.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

from deploy.stack import ROOT

SCRIPT = textwrap.dedent("""
    import eventlet
    eventlet.monkey_patch()
    import sys, pymongo
    from pymongo import ReturnDocument
    client = pymongo.MongoClient(sys.argv[1], tz_aware=True, maxPoolSize=20)
    coll = client.eventlet_probe.seats
    coll.drop()
    coll.insert_one({"_id": "s", "left": 100})
    won = []
    def take(i):
        doc = coll.find_one_and_update({"_id": "s", "left": {"$gte": 3}},
                                       {"$inc": {"left": -3}, "$set": {f"holds.c{i}": 3}},
                                       return_document=ReturnDocument.AFTER)
        if doc is not None:
            won.append(i)
    pool = eventlet.GreenPool(40)
    for i in range(60):
        pool.spawn_n(take, i)
    pool.waitall()
    doc = coll.find_one({"_id": "s"})
    assert eventlet.patcher.is_monkey_patched("socket")
    assert len(won) == 33 and doc["left"] == 1 and len(doc["holds"]) == 33, (won, doc)
    client.drop_database("eventlet_probe")
    print("ok", len(won))
""")


def test_pymongo_is_correct_under_eventlet(mongo_url):
    result = subprocess.run([sys.executable, "-c", SCRIPT, mongo_url], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "ok 33"
