"""Monitoring routes: a district's term figures (监测直报), drill-downs and the downloads.

The district role and finance read their own district (the token's org is the district id),
a school its own figures, a venue the trips to its sessions, an admin every district; the
monitoring service scopes each answer (services/monitoring/access.py).
"""

from __future__ import annotations

from typing import Any

from services.contracts.monitoring import DrillDown, ExportQuery, Rows, TermReport
from services.gateway.downloads import download
from services.gateway.routing import Call, route

READERS = ("finance", "district", "school", "venue", "admin")
TAG = "monitoring"
BASE = "/v1/monitoring/districts/<district_id>/terms/<term>"


def _args(call: Call) -> dict[str, Any]:
    return call.request.args.to_dict()


@route("GET", BASE, roles=READERS, tag=TAG, query=DrillDown, response=TermReport)
def term_report(call: Call) -> Any:
    """A district's term: participation, coverage, variety, satisfaction, priority share."""
    return call.rpc.monitoring.term_report(call.actor, call.path["district_id"],
                                           call.path["term"], _args(call))


@route("GET", f"{BASE}/schools", roles=READERS, tag=TAG, query=DrillDown, response=Rows)
def term_schools(call: Call) -> Any:
    """The term per school (drill down by category, grade or week), with totals."""
    return call.rpc.monitoring.term_rows(call.actor, call.path["district_id"],
                                         call.path["term"], "schools", _args(call))


@route("GET", f"{BASE}/venues", roles=READERS, tag=TAG, query=DrillDown, response=Rows)
def term_venues(call: Call) -> Any:
    """Seats offered, claimed and attended per venue, with totals."""
    return call.rpc.monitoring.term_rows(call.actor, call.path["district_id"],
                                         call.path["term"], "venues", _args(call))


@route("GET", f"{BASE}/trend", roles=READERS, tag=TAG, query=DrillDown, response=Rows)
def term_trend(call: Call) -> Any:
    """Participation by week: trips, pupil visits, new and cumulative participants."""
    return call.rpc.monitoring.term_rows(call.actor, call.path["district_id"],
                                         call.path["term"], "trend", _args(call))


@route("GET", f"{BASE}/csv", roles=READERS, tag=TAG, query=ExportQuery, raw_response=True)
def term_csv(call: Call) -> Any:
    """One view of the term (`view`: summary, schools, venues, trend, categories, grades)."""
    return download(call.rpc.monitoring.report_file(call.actor, call.path["district_id"],
                                                     call.path["term"], "csv", _args(call)))


@route("GET", f"{BASE}/xlsx", roles=READERS, tag=TAG, query=DrillDown, raw_response=True)
def term_xlsx(call: Call) -> Any:
    """The workbook a bureau files upward: a sheet per view with totals, and definitions."""
    return download(call.rpc.monitoring.report_file(call.actor, call.path["district_id"],
                                                     call.path["term"], "xlsx", _args(call)))
