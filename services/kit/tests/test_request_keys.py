from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.kit.errors import ValidationFailed
from services.kit.request_keys import KEEP, RequestKeys


@pytest.fixture()
def keys(db):
    store = RequestKeys(db.request_keys)
    store.ensure_indexes()
    return store


def test_the_first_use_binds_the_key_to_its_target(keys, db):
    assert keys.bind("claim", "sch_1", "k1", "clm_a", "print-1") == "clm_a"
    assert keys.bound("claim", "sch_1", "k1") == "clm_a"
    doc = db.request_keys.find_one({})
    assert isinstance(doc["expires_at"], datetime)
    assert timedelta(days=6) < doc["expires_at"] - datetime.now(UTC) <= KEEP
    ttl = [i for i in db.request_keys.list_indexes() if "expireAfterSeconds" in i]
    assert [(list(i["key"]), i["expireAfterSeconds"]) for i in ttl] == [(["expires_at"], 0)]


def test_a_repeat_gets_the_first_target(keys):
    keys.bind("claim", "sch_1", "k1", "clm_a", "print-1")
    assert keys.bind("claim", "sch_1", "k1", "clm_b", "print-1") == "clm_a"
    assert keys.bind("claim", "sch_1", "k1", "clm_c") == "clm_a"  # no fingerprint: no check


def test_another_kind_or_scope_binds_separately(keys):
    keys.bind("claim", "sch_1", "k1", "clm_a")
    assert keys.bind("batch", "sch_1", "k1", "bat_a") == "bat_a"
    assert keys.bind("claim", "sch_2", "k1", "clm_z") == "clm_z"
    assert keys.bound("venue", "sch_1", "k1") is None


def test_the_same_key_with_another_request_is_refused(keys):
    keys.bind("claim", "sch_1", "k1", "clm_a", "print-1")
    with pytest.raises(ValidationFailed) as refused:
        keys.bind("claim", "sch_1", "k1", "clm_b", "print-2")
    assert refused.value.code == "idempotency-key-reused"
    assert keys.bound("claim", "sch_1", "k1") == "clm_a"


@pytest.mark.parametrize("key", ["", "k" * 201])
def test_a_key_of_the_wrong_length_is_a_field_error(keys, key):
    with pytest.raises(ValidationFailed) as refused:
        keys.bind("claim", "sch_1", key, "clm_a")
    assert set(refused.value.errors) == {"Idempotency-Key"}
