"""Passes (manage links, verification passes): sealed, opened, and refused on any junk."""

from __future__ import annotations

import pytest

from services.admissions.passes import open_pass, seal
from services.kit.errors import Forbidden

SECRET = "unit-test-secret-" + "x" * 32


def test_a_sealed_pass_opens_to_its_claims():
    assert open_pass(SECRET, "verify", seal(SECRET, "verify", {"h": "x"})) == {"h": "x"}


@pytest.mark.parametrize("token", [
    "eyJoIjoieCJ9.\u00ae\u4791Z",  # non-ASCII signature: compare_digest raised TypeError
    "\ud8cd\uddec\u00ae.abc",
    "\u00e1\u00e5.\u00fe",
])
def test_a_non_ascii_pass_is_refused_not_a_server_error(token):
    with pytest.raises(Forbidden):
        open_pass(SECRET, "verify", token)
