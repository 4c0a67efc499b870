"""The service subscribes to exactly the event types the facts fold, and checks its input."""

from __future__ import annotations

import pytest
from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR

from services.kit.errors import ValidationFailed
from services.monitoring.facts import Facts
from services.monitoring.service import MonitoringService, checked


def test_every_folded_event_type_has_a_handler_and_every_handler_a_fold():
    subscribed = {ext.full_type for attr in vars(MonitoringService).values()
                  for ext in getattr(attr, ENTRYPOINT_EXTENSIONS_ATTR, ())
                  if hasattr(ext, "full_type")}
    assert subscribed == set(Facts(None).folds)  # type: ignore[arg-type]


@pytest.mark.parametrize("district_id, term, field", [
    ("", "2026-autumn", "district_id"), ("d" * 101, "2026-autumn", "district_id"),
    (None, "2026-autumn", "district_id"), ("dst_a", "2026-winter", "term"),
    ("dst_a", 2026, "term")])
def test_a_bad_district_or_term_is_named(district_id, term, field):
    with pytest.raises(ValidationFailed) as refused:
        checked(district_id, term)
    assert field in refused.value.errors
