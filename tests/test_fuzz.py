"""The fuzz target: schemathesis over the whole OpenAPI document the running gateway serves,
every operation called as each role it admits, and not one answer may be a server error.

Cases come from the document alone (positive and negative data), judged by schemathesis'
`not_a_server_error`; generation is seeded per operation (KEPU_FUZZ_SEED, no example
database), so a failure replays with the same seed and count. Path parameters and id fields
are sometimes swapped for records of a seeded world (tests/corpus.py), so generated bodies
reach the services' write paths rather than stopping at "no such session". `make test` runs
a few examples per operation; `python -m tests.fuzz --examples 200` (make fuzz) runs the same
test longer. A failure shows the case, the curl command that reproduces it and the stack's
log lines for its request id (the traceback).
"""

from __future__ import annotations

import os
import zlib
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error

from services.gateway.routes import all_routes
from tests import corpus
from tests.corpus import World

pytestmark = pytest.mark.stack

EXAMPLES = int(os.environ.get("KEPU_FUZZ_EXAMPLES", "15"))
SEED = int(os.environ.get("KEPU_FUZZ_SEED", "16"))
ROLES = {(r.method, corpus.openapi_path(r.path)): r.roles for r in all_routes()}


def fuzz_config(examples: int = EXAMPLES, seed: int = SEED) -> schemathesis.Config:
    """Cases from the document alone (NUL bytes too), at most `examples` per operation.

    The bearer token is each role's own: the gateway's 401s are tested elsewhere."""
    return schemathesis.Config.from_dict({
        "seed": seed,
        "generation": {"max-examples": examples, "no-shrink": True, "database": "none",
                       "allow-x00": True, "with-security-parameters": False},
        "checks": {"enabled": False, "not_a_server_error": {"enabled": True}},
    })


def _with_world(world: World, values: Any) -> Any:
    """Half the cases keep what was generated; the other half name the world's records."""
    if not isinstance(values, dict):
        return st.just(values)
    known = {k: world.ids[k] for k in values if k in world.ids}
    if not known:
        return st.just(values)
    return st.sampled_from([values, {**values, **known}])


@pytest.fixture(scope="module")
def world(api) -> World:
    return World.seed(api)


@pytest.fixture(scope="module")
def fuzz_schema(stack, world):
    schema = schemathesis.openapi.from_url(f"{stack.url}/v1/openapi.json",
                                           config=fuzz_config(), timeout=30)

    @schema.hook
    def flatmap_path_parameters(context, path_parameters):  # noqa: ANN001, ANN202
        return _with_world(world, path_parameters)

    @schema.hook
    def flatmap_body(context, body):  # noqa: ANN001, ANN202
        return _with_world(world, body)

    return schema


LABELS = sorted(f"{method} {path}" for method, path in ROLES)


@pytest.mark.parametrize("label", LABELS)
def test_no_request_gets_a_server_error(label, fuzz_schema, world, stack):
    method, path = label.split(" ", 1)
    operation = fuzz_schema[path][method]
    strategy = st.one_of(operation.as_strategy(GenerationMode.POSITIVE),
                         operation.as_strategy(GenerationMode.NEGATIVE))
    callers = world.callers(ROLES[(method, path)])

    @seed(SEED + zlib.crc32(label.encode()))
    @settings(fuzz_schema.config.get_hypothesis_settings(phase="fuzzing"),
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def fuzz(case: Case) -> None:
        for role, client in callers:
            auth = client.session.headers.get("Authorization")
            response = case.call(session=client.session, timeout=60,
                                 headers={"Authorization": auth} if auth else None)
            if response.status_code >= 500:
                print(f"{label} as {role} → {response.status_code}\n"
                      + corpus.server_log(stack.log_dir, response.headers.get("X-Request-Id", "")))
            case.validate_response(response, checks=[not_a_server_error])

    fuzz()
