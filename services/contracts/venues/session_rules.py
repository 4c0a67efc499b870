"""What a whole session must satisfy across its fields, checked on a draft and a change."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from services.kit import clock

MAX_DURATION = timedelta(days=7)

Refusals = list[tuple[str, str]]  # (field, message)


def _starts_in_future(values: dict[str, Any], now: datetime) -> Refusals:
    starts = values.get("starts_at")
    if starts is not None and starts <= clock.stamp(now):
        return [("starts_at", "must be in the future")]
    return []


def _ends_after_start(values: dict[str, Any], now: datetime) -> Refusals:
    starts, ends = values.get("starts_at"), values.get("ends_at")
    if starts is None or ends is None:
        return []
    if ends <= starts:
        return [("ends_at", "must be after starts_at")]
    if clock.parse(ends) - clock.parse(starts) > MAX_DURATION:
        return [("ends_at", "a session lasts at most 7 days")]
    return []


def _grades_in_order(values: dict[str, Any], now: datetime) -> Refusals:
    grades = values.get("grades")
    if grades is not None and len(grades) == 2 and grades[0] > grades[1]:
        return [("grades", "must be [min, max] with min <= max")]
    return []


def _school_limit_within_capacity(values: dict[str, Any], now: datetime) -> Refusals:
    capacity, limit = values.get("capacity"), values.get("max_seats_per_school")
    if capacity is not None and limit is not None and limit > capacity:
        return [("max_seats_per_school", "must not exceed capacity")]
    return []


def _household_limits_for_families(values: dict[str, Any], now: datetime) -> Refusals:
    """Household limits mean something only where households book (family sessions)."""
    audience = values.get("audience")
    if audience is None:  # a change to a published session: these are set at publishing
        return []
    if audience == "family":
        wrong = []
        if values.get("max_seats_per_school") is not None:
            wrong.append(("max_seats_per_school", "family sessions: use max_seats_per_household"))
        limit, capacity = values.get("max_seats_per_household"), values.get("capacity")
        if limit is not None and capacity is not None and limit > capacity:
            wrong.append(("max_seats_per_household", "must not exceed capacity"))
        return wrong
    return [(name, "only applies to family sessions") for name in
            ("max_seats_per_household", "households_may_book_again")
            if values.get(name) not in (None, False)]


def _window_fits_policy(values: dict[str, Any], now: datetime) -> Refusals:
    """A window session needs a window that closes in the future, before the session."""
    policy, closes = values.get("claim_policy"), values.get("window_closes_at")
    starts = values.get("starts_at")
    if policy == "first_come" and closes is not None:
        return [("window_closes_at", "only applies to the window claim policy")]
    if policy != "window":
        return []
    if closes is None:
        return [("window_closes_at", "is required for the window claim policy")]
    if starts is not None and closes >= starts:
        return [("window_closes_at", "must be before starts_at")]
    if closes <= clock.stamp(now):
        return [("window_closes_at", "must be in the future")]
    return []


SESSION_RULES = (_starts_in_future, _ends_after_start, _grades_in_order,
                 _school_limit_within_capacity, _window_fits_policy,
                 _household_limits_for_families)


def session_errors(values: dict[str, Any], now: datetime) -> dict[str, list[str]]:
    """The cross-field rules of a session, per field; empty when the session is sound.

    Shared by the publish schema (on what was sent) and the venues service (on a session
    with a change applied), so a rule reads the same at the gateway and in the service.
    Each rule is one function of `SESSION_RULES`, answering the (field, message) it breaks.
    """
    errors: dict[str, list[str]] = {}
    for rule in SESSION_RULES:
        for name, message in rule(values, now):
            errors.setdefault(name, []).append(message)
    return errors
