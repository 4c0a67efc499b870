"""The audit trail: append-only records, scoped reading, filters, pages, CSV, retention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.identity.audit import COLUMNS
from services.identity.tests.conftest import ADMIN
from services.identity.tests.helpers import member
from services.kit import clock
from services.kit.actor import Actor
from services.kit.errors import Forbidden, ValidationFailed


def query(**filters):
    return {"from_": None, "to": None, "user_id": None, "org_id": None, "action": None,
            "resource_id": None, "limit": 50, "cursor": None, **filters}


def request_entry(org_id, **extra):
    return {"method": "POST", "route": "/v1/claims", "resource_id": "clm_1", "status": 201,
            "user_id": "usr_1", "org_id": org_id, "role": "school", "api_key_id": None,
            "request_id": "req-1", "client_address": "203.0.113.7", "at": None, **extra}


@pytest.fixture()
def orgs(repo, district):
    """sch_a and ven_b in the district; sch_far in none known."""
    dis = district["district_id"]
    repo.organisations.learn("school", "sch_a", "实验小学", "310115")
    repo.organisations.learn("venue", "ven_b", "上海科技馆", "浦东新区教育局")
    repo.organisations.learn("school", "sch_far", "远方小学", "别的区")
    return dis


def test_gateway_requests_are_recorded_with_their_district(repo, orgs):
    repo.audit.requests([request_entry("sch_a"), request_entry("ven_b", role="venue"),
                         request_entry("sch_far")])
    rows = {r["org_id"]: r for r in repo.db.audit.find()}
    assert rows["sch_a"]["district_id"] == orgs and rows["ven_b"]["district_id"] == orgs
    assert rows["sch_far"]["district_id"] is None
    assert rows["sch_a"]["outcome"] == 201 and rows["sch_a"]["route"] == "/v1/claims"


def test_an_admin_reads_everything_a_district_its_own_a_manager_their_org(repo, orgs):
    repo.audit.requests([request_entry("sch_a"), request_entry("ven_b", role="venue"),
                         request_entry("sch_far")])
    everything = repo.audit.query(query(action="request"), ADMIN)["items"]
    assert len(everything) == 3
    bureau = Actor(sub="usr_d", role="district", org=orgs)
    assert {r["org_id"] for r in repo.audit.query(query(action="request"), bureau)["items"]} \
        == {"sch_a", "ven_b"}
    boss = member(repo, "boss@example.cn", org_id="sch_a", manager=True)
    as_boss = Actor(sub=boss["user_id"], role="school", org="sch_a")
    assert {r["org_id"] for r in repo.audit.query(query(action="request"), as_boss)["items"]} \
        == {"sch_a"}
    with pytest.raises(Forbidden):
        repo.audit.query(query(org_id="sch_far"), as_boss)
    teacher = member(repo, "t@example.cn", org_id="sch_a")
    with pytest.raises(Forbidden):
        repo.audit.query(query(), Actor(sub=teacher["user_id"], role="school", org="sch_a"))
    with pytest.raises(Forbidden):
        repo.audit.query(query(), Actor(sub="usr_f", role="finance", org=orgs))


def test_filters_and_pages(repo, orgs, now):
    for i in range(5):
        repo.audit.requests([request_entry("sch_a", resource_id=f"clm_{i}")])
        now.move(10)
    middle = clock.stamp(clock.now() - timedelta(seconds=30))
    later = repo.audit.query(query(action="request", from_=middle), ADMIN)["items"]
    assert [r["resource_id"] for r in later] == ["clm_2", "clm_3", "clm_4"]
    earlier = repo.audit.query(query(action="request", to=middle), ADMIN)["items"]
    assert [r["resource_id"] for r in earlier] == ["clm_0", "clm_1"]
    one = repo.audit.query(query(resource_id="clm_3"), ADMIN)["items"]
    assert len(one) == 1 and one[0]["resource_id"] == "clm_3"
    seen, cursor = [], None
    while True:
        page = repo.audit.query(query(action="request", limit=2, cursor=cursor), ADMIN)
        seen += [r["resource_id"] for r in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"clm_{i}" for i in range(5)]


def test_csv_export_guards_cells_against_formulas(repo, orgs):
    repo.audit.requests([request_entry("sch_a", resource_id="=HYPERLINK(\"http://x\")")])
    text = repo.audit.export_csv(query(action="request"), ADMIN)
    lines = text.lstrip("\ufeff").splitlines()
    assert lines[0] == ",".join(COLUMNS)
    assert "'=HYPERLINK" in lines[1]


def test_an_export_too_large_names_the_range(repo, orgs, monkeypatch):
    monkeypatch.setattr("services.identity.audit.EXPORT_MAX", 2)
    repo.audit.requests([request_entry("sch_a") for _ in range(3)])
    with pytest.raises(ValidationFailed) as refused:
        repo.audit.export_csv(query(), ADMIN)
    assert "to" in refused.value.errors


def test_records_expire_after_the_retention_by_a_ttl_index(repo, orgs):
    repo.audit.requests([request_entry("sch_a")])
    record = repo.db.audit.find_one()
    kept = record["expires_at"] - datetime.now(UTC)
    assert timedelta(days=3 * 365 - 1) < kept <= timedelta(days=3 * 365)
    ttl = [i for i in repo.db.audit.list_indexes() if "expires_at" in i["key"]]
    assert ttl and ttl[0]["expireAfterSeconds"] == 0


def test_identity_actions_are_recorded_for_each_change(repo, orgs):
    boss = member(repo, "boss@example.cn", org_id="sch_a", manager=True)
    actions = {r["action"] for r in repo.db.audit.find()}
    assert {"district_registered", "invitation_sent", "invitation_accepted",
            "member_added"} <= actions
    repo.members.remove(boss["membership"]["membership_id"], ADMIN)
    removed = repo.db.audit.find_one({"action": "member_removed"})
    assert removed["resource_id"] == boss["membership"]["membership_id"]
    assert removed["user_id"] == ADMIN.sub and removed["district_id"] == orgs


def test_records_are_never_changed(repo, orgs):
    """Append-only: nothing in identity updates or deletes an audit record."""
    import inspect

    from services.identity import audit
    source = inspect.getsource(audit)
    for verb in ("update_one", "update_many", "delete_one", "delete_many", "replace_one",
                 "find_one_and_update"):
        assert verb not in source


def test_a_district_naming_an_organisation_outside_it_is_refused(repo, orgs):
    bureau = Actor(sub="usr_d", role="district", org=orgs)
    assert repo.audit.query(query(org_id="sch_a"), bureau)["items"] == []
    with pytest.raises(Forbidden):
        repo.audit.query(query(org_id="sch_far"), bureau)


def test_a_batch_sent_twice_is_recorded_once(repo, orgs):
    batch = [request_entry("sch_a", entry_id="a" * 32), request_entry("sch_a", entry_id="b" * 32)]
    assert repo.audit.requests(batch) == 2
    repo.audit.requests([*batch, request_entry("sch_a", entry_id="c" * 32)])  # a retry
    assert repo.db.audit.count_documents({"action": "request"}) == 3
