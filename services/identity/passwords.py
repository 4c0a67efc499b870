"""Passwords: argon2id hashes, and the rules a new password must pass.

Parameters (docs/identity.md, "Passwords"): argon2id, time_cost 2, memory 19 MiB,
parallelism 1 — OWASP's first recommended configuration. The machines have 2 cores that
every service shares; one hash should hold one core for a fraction of a second and a
burst of sign-ins (a class of teachers at 08:00) should not exhaust memory: ten workers
hashing at once use ~190 MiB. Parallelism 1 because a second lane would only take the
other core from the rest of the stack. Stored hashes name their parameters, so changing
these constants takes effect at each person's next sign-in (`needs_rehash`).

`verify` with no stored hash (no such person) still runs a full verification against a
dummy hash, so the answer takes as long for an unknown identifier as for a wrong
password: the time of a refusal tells an attacker nothing about who has an account.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from functools import cached_property
from importlib import resources
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from services.kit.errors import ValidationFailed

TIME_COST = 2
MEMORY_KIB = 19 * 1024
PARALLELISM = 1
MIN_LENGTH = 10
MAX_LENGTH = 128  # argon2 takes any length; a bound keeps a sign-in request cheap to refuse
MIN_IDENTIFIER_PART = 4  # shorter parts of an identifier ("li") are too common to refuse


def _common() -> frozenset[str]:
    text = resources.files("services.identity").joinpath("common_passwords.txt").read_text(
        encoding="utf-8")
    return frozenset(line.strip().lower() for line in text.splitlines()
                     if line.strip() and not line.startswith("#"))


COMMON = _common()


def _inline(work: Callable[..., Any], *args: Any) -> Any:
    return work(*args)


class Passwords:
    """Hashes and checks passwords with one set of argon2id parameters.

    `offload` runs the hash itself: the service passes eventlet's `tpool.execute`, so a
    hash runs on an OS thread (argon2's C code releases the GIL) instead of blocking the
    process's event loop — without it, concurrent sign-ins queue one behind another on
    one core."""

    def __init__(self, time_cost: int = TIME_COST, memory_kib: int = MEMORY_KIB,
                 parallelism: int = PARALLELISM,
                 offload: Callable[..., Any] = _inline) -> None:
        self.hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib,
                                     parallelism=parallelism)
        self.offload = offload

    @cached_property
    def dummy(self) -> str:
        """A hash of a random secret nobody knows, verified when there is no person."""
        return self.hasher.hash(secrets.token_urlsafe(24))

    def hash(self, password: str) -> str:
        return self.offload(self.hasher.hash, password)

    def verify(self, stored: str | None, password: str) -> bool:
        """Whether `password` matches `stored`; with no `stored`, the same work, then False."""
        try:
            matched = self.offload(self.hasher.verify, stored or self.dummy, password)
            return matched and stored is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored: str) -> bool:
        """True when `stored` was made with other parameters than these."""
        try:
            return self.hasher.check_needs_rehash(stored)
        except (InvalidHashError, ValueError):
            return True


def check_new(password: str, identifiers: tuple[str, ...] = (),
              field: str = "password") -> None:
    """Refuse, naming `field`, a new password that is short, common or the person's own id.

    `identifiers` are the person's e-mail address and mobile: a password containing the
    e-mail's local part or the mobile's digits is among the first an attacker tries.
    """
    problem = _problem(password, identifiers)
    if problem:
        raise ValidationFailed(f"{field}: {problem}", {field: [problem]},
                               code="weak-password")


def _problem(password: str, identifiers: tuple[str, ...]) -> str | None:
    if not isinstance(password, str) or len(password) < MIN_LENGTH:
        return f"must be at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"must be at most {MAX_LENGTH} characters"
    lowered = password.lower()
    if lowered in COMMON or len(set(lowered)) <= 2:
        return "is one of the most common passwords; choose another"
    for part in _identifier_parts(identifiers):
        if part in lowered:
            return "must not contain your e-mail address or mobile number"
    return None


def _identifier_parts(identifiers: tuple[str, ...]) -> list[str]:
    parts = []
    for value in identifiers:
        if not value:
            continue
        value = value.lower()
        if "@" in value:
            parts.append(value.partition("@")[0])
        elif value.startswith("+86"):
            parts.append(value[3:])
        else:
            parts.append(value)
    return [p for p in parts if len(p) >= MIN_IDENTIFIER_PART]
