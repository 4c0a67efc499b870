from __future__ import annotations

from services.booking.batches import pack


def session(sid, seats, grades=(1, 6), limit=None, rule=None):
    return {"session_id": sid, "seats_left": seats, "grades": list(grades),
            "max_seats_per_school": limit, "min_teachers_per_students": rule}


def g(label, students=40, teachers=2, grade=5):
    return {"label": label, "grade": grade, "students": students, "teachers": teachers}


def test_classes_fill_the_earliest_preferred_session_first():
    planned, unplaced = pack([g("1班"), g("2班"), g("3班")],
                             [session("s1", 90), session("s2", 90)])
    assert [x["label"] for x in planned["s1"]] == ["1班", "2班"]
    assert [x["label"] for x in planned["s2"]] == ["3班"]
    assert unplaced == []


def test_a_class_that_fits_nowhere_is_reported_with_the_reasons():
    planned, unplaced = pack([g("1班", grade=9)], [session("s1", 90, grades=(1, 6))])
    assert planned == {} and unplaced[0]["label"] == "1班"
    assert "grade 9" in unplaced[0]["reason"]


def test_per_school_limit_counts_seats_already_held():
    planned, unplaced = pack([g("1班"), g("2班")], [session("s1", 500, limit=100)],
                             school_held={"s1": 20})
    assert [x["label"] for x in planned["s1"]] == ["1班"]
    assert "limit" in unplaced[0]["reason"]
