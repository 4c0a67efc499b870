"""The chart of accounts: which ledger accounts exist and how their ids are spelled.

Every account belongs to one district (the finance token's `org`) and one school term, so
a term's books close on their own. Balances are the sum of entries (debit +, credit -),
and each kind reads naturally with that sign:

| kind      | id                                  | balance means                              |
| --------- | ----------------------------------- | ------------------------------------------ |
| `source`  | `source|<district>|<term>|<source>`  | minus what that source contributed          |
| `budget`  | `budget|<district>|<term>|<source>`  | money left to spend (never below zero)      |
| `payable` | `payable|<district>|<term>|<tutor>` | subsidy owed to a tutor (below zero: the    |
|           |                                     | tutor owes a clawback)                      |
| `transit` | `transit|<district>|<term>`         | sent to the bank in payout files, not yet   |
|           |                                     | seen on a statement                          |
| `paid`    | `paid|<district>|<term>`            | confirmed paid by a bank statement          |

For one term: -sum(source) = sum(budget) + sum(payable) + transit + paid, give or take
money moved between terms by transfers.
"""

from __future__ import annotations

from typing import Any

from services.contracts.funding import SOURCES

# Funding sources (经费来源) and the order tutor subsidies draw on them: the fiscal subsidy
# is meant for exactly this; service fees top it up. Collected fees (代收费) are money held
# for a purpose parents paid for (e.g. transport) and never pay tutor subsidies.
SUBSIDY_SOURCES = ("fiscal_subsidy", "service_fees")

KINDS = ("source", "budget", "payable", "transit", "paid")
__all__ = ["SOURCES", "SUBSIDY_SOURCES", "KINDS", "CATEGORIES"]
FLOORED_KINDS = ("budget",)  # balance may not go below zero

# Which flow a posting belongs to; reports group entries by it.
CATEGORIES = ("funding", "transfer", "subsidy", "payout", "payment", "recovery")


def _join(*parts: str) -> str:
    for part in parts:
        if "|" in part:
            raise ValueError(f"'|' is not allowed in an account id part: {part!r}")
    return "|".join(parts)


def source(district: str, term: str, name: str) -> str:
    return _join("source", district, term, name)


def budget(district: str, term: str, name: str) -> str:
    return _join("budget", district, term, name)


def payable(district: str, term: str, tutor_id: str) -> str:
    return _join("payable", district, term, tutor_id)


def transit(district: str, term: str) -> str:
    return _join("transit", district, term)


def paid(district: str, term: str) -> str:
    return _join("paid", district, term)


def describe(account_id: str) -> dict[str, Any]:
    """The parts of an account id: kind, district, term and the source or tutor."""
    parts = account_id.split("|")
    kind, district, term = parts[0], parts[1], parts[2]
    info: dict[str, Any] = {"kind": kind, "district": district, "term": term,
                            "source": None, "tutor_id": None}
    if kind in ("source", "budget"):
        info["source"] = parts[3]
    elif kind == "payable":
        info["tutor_id"] = parts[3]
    return info


def floor_of(account_id: str) -> int | None:
    """The lowest balance an account may reach, or None when it may go anywhere."""
    return 0 if account_id.split("|", 1)[0] in FLOORED_KINDS else None
