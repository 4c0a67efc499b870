"""Who hears about a claim, and on which channel.

Guardians are matched to a claim by class label (the claim's `groups[].label` and the
roster's label, compared by `contracts.common.class_label_key`) within the claim's school.
A guardian's channel is their preferred one; if they opted out of it, or lack its contact,
the next they have (email, sms, wechat order), else none: the message is then recorded as
suppressed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from services.contracts.common import class_label_key
from services.contracts.notifications import CHANNELS, CONTACT_OF


@dataclass(frozen=True)
class Recipient:
    label: str
    pupil: dict[str, Any]
    guardian: dict[str, Any]


def labels_of(groups: list[dict[str, Any]]) -> list[str]:
    """The class labels of a claim's groups, in order, each once."""
    seen: list[str] = []
    for group in groups:
        label = group["label"].strip()
        if label not in seen:
            seen.append(label)
    return seen


def recipients(rosters: list[dict[str, Any]], labels: list[str]) -> Iterator[Recipient]:
    """Every (pupil, guardian) of the classes named by `labels` (matched by
    `class_label_key`: `五年级（2）班` finds the roster of `五年级(2)班`)."""
    by_label = {class_label_key(roster["label"]): roster for roster in rosters}
    for label in labels:
        roster = by_label.pop(class_label_key(label), None)
        if roster is None:
            continue
        for pupil in roster["pupils"]:
            for guardian in pupil["guardians"]:
                yield Recipient(label, pupil, guardian)


def choose_channel(guardian: dict[str, Any]) -> tuple[str | None, str | None]:
    """(channel, contact) a message to `guardian` goes on, or (None, None)."""
    preferred = guardian.get("channel")
    order = ([preferred] if preferred in CHANNELS else []) + [
        c for c in CHANNELS if c != preferred]
    refused = set(guardian.get("opt_out") or [])
    for channel in order:
        contact = guardian.get(CONTACT_OF[channel])
        if contact and channel not in refused:
            return channel, contact
    return None, None
