from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.identity.passwords import Passwords
from services.identity.policy import Policy
from services.identity.repository import IdentityRepository
from services.kit import clock
from services.kit.actor import Actor
from services.kit.config import Settings

SECRET = "identity-unit-secret-of-at-least-32-bytes"
ADMIN = Actor(sub="usr_admin", role="admin")
PASSWORD = "Kepu-planetarium-7"
HASHER = Passwords()  # the real parameters: one instance, so its dummy hash is made once




@pytest.fixture()
def now():
    """The clock stands still at the real time the test began; `now.move(seconds)`.

    Starting at the real time keeps minted tokens verifiable by the real JWT library.
    """

    class Clock:
        value = datetime.now(UTC).replace(microsecond=0)

        def move(self, seconds: float) -> None:
            Clock.value = Clock.value + timedelta(seconds=seconds)

    clock.set_clock(lambda: Clock.value)
    yield Clock()
    clock.set_clock(None)


@pytest.fixture()
def repo(db, now):
    repository = IdentityRepository(db, Settings(jwt_secret=SECRET), Policy(), HASHER)
    repository.ensure_indexes()
    return repository


@pytest.fixture()
def district(repo):
    return repo.districts.register({"name": "浦东新区教育局", "code": "310115",
                                    "timezone": "Asia/Shanghai"}, ADMIN)
