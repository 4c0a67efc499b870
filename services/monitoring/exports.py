"""The downloads a bureau files upward: a CSV per view, and one workbook of every view.

The workbook has a sheet per view (summary, schools, venues, weeks, categories, grades,
satisfaction, priority, families and training), each table ending in a totals row, and a
sheet of definitions (docs/monitoring.md). Every cell goes through kit.spreadsheets'
formula guard: school and venue names are other people's text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from services.kit.spreadsheets import XLSX_TYPE, write_csv, write_xlsx

SCHOOL_COLUMNS = (
    ("school_id", "学校编号 school id"), ("name", "学校 school"), ("rural", "农村 rural"),
    ("under_resourced", "薄弱 under-resourced"), ("enrolment", "在校生 enrolment"),
    ("participants", "参与学生 participants"), ("participation_rate", "参与率 participation"),
    ("headcount_pupil_visits", "按人数计 head-count pupil visits"),
    ("trips_confirmed", "确认出行 trips confirmed"), ("trips_attended", "已出行 trips attended"),
    ("no_shows", "缺席 no-shows"), ("no_show_rate", "缺席率 no-show rate"),
    ("attendance_rate", "到场率 attendance rate"), ("seats_confirmed", "确认座位 seats"),
    ("tutor_visits_delivered", "请进来 tutor visits"), ("variety", "活动类别数 kinds"),
    ("subsidy_paid_fen", "已付补贴(分) subsidy paid, fen"),
    ("subsidy_per_pupil_served_fen", "生均补贴(分) subsidy per pupil served, fen"),
    ("answers", "问卷 answers"), ("satisfaction_rate", "满意率 satisfaction"),
    ("satisfaction_mean", "满意度均值 mean rating"))
VENUE_COLUMNS = (
    ("venue_id", "场馆编号 venue id"), ("name", "场馆 venue"), ("sessions", "场次 sessions"),
    ("seats_offered", "提供座位 seats offered"), ("seats_claimed", "预约座位 seats claimed"),
    ("seats_attended", "到场 seats attended"), ("claim_rate", "预约率 claim rate"),
    ("attendance_rate", "到场率 attendance rate"))
TREND_COLUMNS = (
    ("week", "周 week (Monday)"), ("trips_attended", "出行 trips attended"),
    ("tutor_visits", "请进来 tutor visits"), ("pupil_visits", "人次 pupil visits"),
    ("new_participants", "新参与 new participants"),
    ("participants_to_date", "累计参与 participants to date"),
    ("participation_rate_to_date", "累计参与率 participation to date"))
CATEGORY_COLUMNS = (
    ("category", "类别 kind"), ("schools", "开展学校 schools"),
    ("share_of_schools", "学校占比 share of schools"), ("activities", "活动 activities"),
    ("pupil_visits", "人次 pupil visits"))
GRADE_COLUMNS = (
    ("grade", "年级 grade"), ("trips", "出行 trips"), ("pupils_booked", "预约学生 pupils booked"),
    ("pupils_booked_on_attended", "已出行班级学生 pupils on attended trips"))
ADMISSION_COLUMNS = (
    ("audience", "对象 audience (family/training)"), ("venue_id", "场馆编号 venue id"),
    ("name", "场馆 venue"), ("week", "周 week (Monday)"), ("bookings", "预约 bookings"),
    ("people_booked", "预约人数 people booked"), ("adults_booked", "成人 adults booked"),
    ("children_booked", "儿童 children booked"), ("cancelled", "取消 cancelled"),
    ("checked_in", "已入场预约 bookings checked in"),
    ("people_checked_in", "入场人数 people checked in"),
    ("adults_checked_in", "入场成人 adults checked in"),
    ("children_checked_in", "入场儿童 children checked in"),
    ("check_in_rate", "入场率 check-in rate"))
SUMMED = {"bookings", "people_booked", "adults_booked", "children_booked", "cancelled",
          "checked_in", "people_checked_in", "adults_checked_in", "children_checked_in",
          "enrolment", "participants", "headcount_pupil_visits", "trips_confirmed",
          "trips_attended", "no_shows", "seats_confirmed", "tutor_visits_delivered", "answers",
          "subsidy_paid_fen",
          "sessions", "seats_offered", "seats_claimed", "seats_attended",
          "tutor_visits", "pupil_visits", "new_participants", "activities", "trips",
          "pupils_booked", "pupils_booked_on_attended"}

DEFINITIONS = (
    ("participation_rate", "distinct pupils recorded by name on ≥1 attended trip or tutor "
     "visit ÷ enrolment of the district's schools"),
    ("headcount_pupil_visits", "pupils counted by head only (attendance without a roster, "
     "tutor visits): pupil visits, not distinct pupils; reported apart"),
    ("participation_rate_upper", "(participants + head-count pupil visits) ÷ enrolment, at "
     "most 1: the most the participation rate can be"),
    ("coverage_rate", "schools with ≥1 attended trip or delivered tutor visit ÷ schools"),
    ("variety", "distinct kinds (session categories, and tutor_visit) a school took part in"),
    ("share_of_schools", "schools that took part in a kind ÷ schools (监测直报)"),
    ("satisfaction_rate", "ratings of 4 or 5 ÷ all ratings (content, organisation, safety)"),
    ("satisfaction_mean", "mean of all ratings (1-5)"),
    ("response_rate", "guardian answers ÷ pupils who came (trips and tutor visits)"),
    ("attendance_rate", "pupils attended ÷ pupils booked, over trips whose attendance is recorded"),
    ("no_show_rate", "trips recorded with nobody attending ÷ trips recorded"),
    ("seat_share", "pupils' seats confirmed to rural and under-resourced schools ÷ all pupils' "
     "seats confirmed; compare with enrolment_share"),
    ("enrolment_share", "enrolment of rural and under-resourced schools ÷ enrolment"),
    ("tutor_visits_delivered", "tutor visits delivered or confirmed, not cancelled"),
    ("subsidy_paid_fen", "subsidies paid (matched on a bank statement) for the tutor visits "
     "counted, in fen"),
    ("subsidy_per_pupil_served_fen", "subsidy paid ÷ pupils served by those paid visits (their "
     "students), to the nearest fen"),
    ("people_checked_in", "families and teacher training, apart from school trips: people "
     "(adults, children) of bookings checked in at the venue, per venue and week"),
    ("claim_rate", "seats claimed (confirmed, not cancelled) ÷ seats offered (capacity of "
     "sessions not cancelled)"),
)


COLUMNS = {"schools": SCHOOL_COLUMNS, "venues": VENUE_COLUMNS, "trend": TREND_COLUMNS,
           "categories": CATEGORY_COLUMNS, "grades": GRADE_COLUMNS}


def totals(rows: list[dict[str, Any]], view: str) -> dict[str, Any]:
    """The count columns of a table, summed (rates are in the summary, not summed)."""
    return {key: sum(r.get(key) or 0 for r in rows) for key, _ in COLUMNS[view]
            if key in SUMMED}


def _cell(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return value


def table(rows: list[dict[str, Any]], columns: Sequence[tuple[str, str]],
          totals: bool = True) -> list[list[Any]]:
    """A header row, a row per item, and a totals row summing the count columns."""
    out: list[list[Any]] = [[header for _, header in columns]]
    out += [[_cell(row.get(key)) for key, _ in columns] for row in rows]
    if totals:
        out.append(["合计 total" if i == 0 else
                    (sum(r.get(key) or 0 for r in rows) if key in SUMMED else None)
                    for i, (key, _) in enumerate(columns)])
    return out


def pairs(figures: dict[str, Any], title: str) -> list[list[Any]]:
    out: list[list[Any]] = [["指标 figure", title]]
    for key, value in figures.items():
        if isinstance(value, dict):
            for sub, inner in value.items():
                out.append([f"{key}.{sub}", _cell(inner) if not isinstance(inner, dict)
                            else ", ".join(f"{k}={v}" for k, v in inner.items())])
        else:
            out.append([key, _cell(value)])
    return out


def views(report: dict[str, Any]) -> dict[str, list[list[Any]]]:
    head = {"district_id": report["district_id"], "term": report["term"],
            "computed_at": report["computed_at"]}
    return {
        "summary": pairs({**head, **report["summary"]}, "值 value"),
        "schools": table(report["schools"], SCHOOL_COLUMNS),
        "venues": table(report["venues"], VENUE_COLUMNS),
        "trend": table(report["trend"], TREND_COLUMNS),
        "categories": table(report["categories"], CATEGORY_COLUMNS),
        "grades": table(report["grades"], GRADE_COLUMNS),
        "satisfaction": pairs(report["satisfaction"], "值 value"),
        "priority": pairs(report["priority"], "值 value"),
        "admissions": table(report["admissions"]["by_venue_week"], ADMISSION_COLUMNS),
    }


SHEETS = (("summary", "汇总 Summary"), ("schools", "学校 Schools"), ("venues", "场馆 Venues"),
          ("trend", "按周 Weeks"), ("categories", "类别 Categories"), ("grades", "年级 Grades"),
          ("satisfaction", "满意度 Satisfaction"), ("priority", "优先 Priority"),
          ("admissions", "亲子与培训 Families and training"))


def csv_file(report: dict[str, Any], view: str) -> dict[str, Any]:
    rows = views(report)[view]
    name = f"monitoring-{report['district_id']}-{report['term']}-{view}.csv"
    return {"filename": name, "content_type": "text/csv; charset=utf-8",
            "text": write_csv(rows[0], rows[1:])}


def xlsx_file(report: dict[str, Any]) -> tuple[str, str, bytes]:
    made = views(report)
    sheets = [(title, made[view]) for view, title in SHEETS]
    sheets.append(("定义 Definitions", [["指标 figure", "定义 definition"], *DEFINITIONS]))
    name = f"monitoring-{report['district_id']}-{report['term']}.xlsx"
    return name, XLSX_TYPE, write_xlsx(sheets)
