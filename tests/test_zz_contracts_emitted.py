"""Every event the services emitted during this test run matches its registered contract.

The `event_tap` fixture binds a queue to every producer's events exchange when the stack
starts, so this test (collected last) sees what all the other tests made the services
emit; run alone, it drives a small flow of its own first.
"""

from __future__ import annotations

import json
from collections import Counter

import pika
import pytest

import services.contracts  # noqa: F401 - registers every event type
from services.kit import broker
from services.kit.registry import EVENTS, validate_envelope
from tests.booking_helpers import School, Venue, group
from tests.support import wait_for

pytestmark = pytest.mark.stack


def test_every_emitted_event_validates_against_the_registry(stack, api, event_tap):
    venue = Venue(api, name="contract check venue")
    session = venue.publish(capacity=40)
    school = School(api)
    claim = school.claim(session["session_id"], group("一班")).json()
    school.client.post(f"/v1/claims/{claim['claim_id']}/cancel", json={})
    seen = Counter()
    problems = []
    expected = {"venues.venue_registered", "venues.session_published",
                "booking.school_registered", "booking.claim_confirmed",
                "booking.claim_cancelled"}

    connection = pika.BlockingConnection(broker.parameters(event_tap["amqp_url"]))
    channel = connection.channel()

    def drain():
        while True:
            method, props, body = channel.basic_get(event_tap["queue"], auto_ack=True)
            if method is None:
                return expected <= set(seen)
            envelope = json.loads(body)
            seen[envelope.get("type")] += 1
            try:
                validate_envelope(envelope)
            except Exception as exc:  # noqa: BLE001 - collect every problem
                problems.append((envelope.get("type"), str(exc)))
            assert props.message_id == envelope["event_id"]

    try:
        wait_for(drain, timeout=30, message=f"events {expected} on the tap")
    finally:
        connection.close()
    assert not problems, problems
    assert set(seen) <= {t for t, _ in EVENTS}
    print("events seen:", dict(seen))
