"""Monitoring: district × term figures (监测直报) and what allocation weighs (RPC payloads).

Monitoring publishes no events: it only reads other services' events (docs/monitoring.md).
"""

from __future__ import annotations

from marshmallow import fields, validate

from services.contracts.common import Day, Strict, Whole
from services.contracts.terms import TERM_PATTERN
from services.contracts.venues import CATEGORIES

TUTOR_VISIT = "tutor_visit"  # the kind a tutor visit counts as in the category mix
KINDS = (*CATEGORIES, TUTOR_VISIT)
VIEWS = ("summary", "schools", "venues", "trend", "categories", "grades")
ID = validate.Length(min=1, max=64)


class DrillDown(Strict):
    """Narrow the facts a drill-down table counts: one category, one grade, one week."""

    category = fields.String(validate=validate.OneOf(KINDS))
    grade = Whole(validate=validate.Range(min=1, max=12))
    week = Day()  # any day of the week (Monday to Sunday, Asia/Shanghai)


class ExportQuery(DrillDown):
    """Which view a CSV download holds (the XLSX workbook holds every view)."""

    view = fields.String(load_default="summary", validate=validate.OneOf(VIEWS))


class SchoolHistoryRequest(Strict):
    """What window allocation asks: per school, confirmed visits and no-shows this term."""

    school_ids = fields.List(fields.String(validate=ID), required=True,
                             validate=validate.Length(min=0, max=1000))
    term = fields.String(required=True, validate=validate.Regexp(TERM_PATTERN))


class SchoolHistory(Strict):
    confirmed_visits = Whole(required=True)
    no_shows = Whole(required=True)


class TermReport(Strict):
    """The district × term figures; every rate is a fraction in [0, 1], or None when its
    denominator is zero (docs/monitoring.md defines each)."""

    district_id = fields.String(required=True)
    term = fields.String(required=True)
    scope = fields.Dict(required=True)
    computed_at = fields.String(required=True)
    summary = fields.Dict(required=True)
    categories = fields.List(fields.Dict(), required=True)
    grades = fields.List(fields.Dict(), required=True)
    satisfaction = fields.Dict(required=True)
    priority = fields.Dict(required=True)
    admissions = fields.Dict()  # family bookings and teacher training, counted apart


class Rows(Strict):
    district_id = fields.String(required=True)
    term = fields.String(required=True)
    items = fields.List(fields.Dict(), required=True)
    totals = fields.Dict(required=True)
