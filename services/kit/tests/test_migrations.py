"""kit.migrations: the district directory's rules and `kepu migrate districts`' steps."""

from __future__ import annotations

import pytest

from services.kit import cli
from services.kit.errors import NotFound, ValidationFailed
from services.kit.migrations import (
    DistrictDirectory,
    adopt_ids,
    checked_mapping,
    migrate_districts,
    names_without_ids,
)


@pytest.fixture()
def directory(db):
    d = DistrictDirectory(db.district_directory)
    d.ensure_indexes()
    d.learn({"district_id": "dis_pd", "name": "浦东新区", "code": "310115",
             "timezone": "Asia/Shanghai"})
    return d


def test_learning_twice_or_partially_keeps_one_entry(directory):
    directory.learn({"district_id": "dis_pd", "name": "浦东新区"})  # the migration's form
    assert directory.collection.count_documents({}) == 1
    assert directory.get("dis_pd")["code"] == "310115"
    assert directory.names(["dis_pd", "dis_x", None]) == {"dis_pd": "浦东新区"}


def test_resolve_by_id_by_name_and_refusals(directory):
    assert directory.resolve({"district_id": "dis_pd"}) == ("dis_pd", "浦东新区")
    assert directory.resolve({"district_id": "dis_pd", "district": "浦东新区"}) == (
        "dis_pd", "浦东新区")
    assert directory.resolve({"district": "浦东新区"}) == ("dis_pd", "浦东新区")
    assert directory.resolve({"district": "静安区"}) == (None, "静安区")
    for bad, field in (({"district_id": "dis_no"}, "district_id"),
                       ({"district_id": "dis_pd", "district": "徐汇区"}, "district"),
                       ({}, "district_id")):
        with pytest.raises(ValidationFailed) as refused:
            directory.resolve(bad)
        assert field in refused.value.errors


def test_a_name_two_districts_share_links_neither(directory):
    directory.learn({"district_id": "dis_pd2", "name": "浦东新区"})
    assert directory.resolve({"district": "浦东新区"}) == (None, "浦东新区")


def test_names_then_ids_then_nothing_left(db):
    schools = db.schools
    schools.insert_many([{"_id": 1, "district": "静安区"},
                         {"_id": 2, "district": "静安区", "district_id": None},
                         {"_id": 3, "district": "浦东新区", "district_id": "dis_pd"},
                         {"_id": 4, "district": "徐汇区"}])
    assert names_without_ids(schools) == {"静安区", "徐汇区"}
    assert adopt_ids(schools, {"静安区": "dis_ja"}) == 2
    assert adopt_ids(schools, {"静安区": "dis_ja"}) == 0
    assert adopt_ids(schools, {"浦东新区": "dis_other"}) == 0  # a linked school stays put
    assert names_without_ids(schools) == {"徐汇区"}


def test_a_mapping_must_be_names_to_ids():
    assert checked_mapping({"静安区": "dis_ja"}) == {"静安区": "dis_ja"}
    for bad in ([], {"静安区": ""}, {"": "dis"}, {"a": 1}):
        with pytest.raises(ValidationFailed):
            checked_mapping(bad)


class FakeCluster:
    """Owners with names in their data, and identity finding or creating districts."""

    def __init__(self) -> None:
        self.data = {"booking": {"schools": {"静安区": None, "浦东新区": "dis_pd"}},
                     "venues": {"venues": {"静安区": None, "徐汇区": None}},
                     "funding": {"books": {}}}
        self.districts = {"浦东新区": "dis_pd"}
        self.actors: list[dict] = []

    def call(self, service: str, method: str, *args):
        self.actors.append(args[-1])
        if service == "identity":
            for name in args[0]:
                self.districts.setdefault(name, f"dis_{len(self.districts)}")
            return {n: self.districts[n] for n in args[0]}
        rows = next(iter(self.data[service].values()))
        if method == "district_names":
            return sorted(n for n, i in rows.items() if i is None)
        linked = [n for n in args[0] if rows.get(n, "x") is None]
        for name in linked:
            rows[name] = args[0][name]
        return {"linked": len(linked)}


def test_the_migration_links_every_owner_and_a_rerun_changes_nothing():
    cluster = FakeCluster()
    signed = iter(range(100))
    first = migrate_districts(cluster.call, lambda: {"signature": next(signed)})
    assert first["names"] == ["徐汇区", "静安区"]
    assert first["adopted"] == {"booking": {"linked": 1}, "venues": {"linked": 2},
                                "funding": {"linked": 0}}
    assert cluster.data["booking"]["schools"]["静安区"] == first["districts"]["静安区"]
    assert cluster.data["venues"]["venues"]["静安区"] == first["districts"]["静安区"]
    assert len({a["signature"] for a in cluster.actors}) == len(cluster.actors)  # fresh each
    known = dict(cluster.districts)
    again = migrate_districts(cluster.call, lambda: {"signature": next(signed)})
    assert again["names"] == [] and again["districts"] == {}
    assert set(again["adopted"]) == {"booking", "venues", "funding"}
    assert all(a == {"linked": 0} for a in again["adopted"].values())
    assert cluster.districts == known  # no district made twice


def test_a_name_can_be_mapped_onto_a_district_registered_under_another_name():
    cluster = FakeCluster()
    checked: list[str] = []
    plain = cluster.call

    def call(service, method, *args):
        if method == "get_district":
            checked.append(args[0])
            if args[0] != "dis_pd":
                raise NotFound(f"district {args[0]} not found")
            return {"district_id": args[0]}
        return plain(service, method, *args)

    done = migrate_districts(call, lambda: {}, given={"静安区": "dis_pd"})
    assert done["districts"] == {"静安区": "dis_pd", "徐汇区": "dis_1"}
    assert checked == ["dis_pd"]
    untouched = FakeCluster()
    with pytest.raises(NotFound):
        migrate_districts(lambda s, m, *a: call(s, m, *a) if m == "get_district"
                          else untouched.call(s, m, *a), lambda: {},
                          given={"静安区": "dis_nope"})
    assert untouched.actors == []  # refused before anything was asked or changed


def test_the_cli_parses_the_migration_and_its_maps():
    args = cli.parser().parse_args(["migrate", "districts", "--map", "浦东新区=dis_ab",
                                    "--map", "a=b=dis_c"])
    assert args.func is cli.cmd_migrate_districts
    assert dict(args.map) == {"浦东新区": "dis_ab", "a=b": "dis_c"}
    with pytest.raises(SystemExit):
        cli.parser().parse_args(["migrate", "districts", "--map", "浦东新区=310115"])
