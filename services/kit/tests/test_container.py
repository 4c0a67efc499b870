"""Each service sizes its worker pool; an explicit KEPU_MAX_WORKERS overrides them all."""

from nameko.rpc import rpc

from services.kit.config import Settings
from services.kit.container import Container


class Waiting:
    name = "waiting"
    max_workers = 24

    @rpc
    def ping(self) -> str:
        return "pong"


class Plain:
    name = "plain"

    @rpc
    def ping(self) -> str:
        return "pong"


def _container(cls: type, env: dict[str, str]) -> Container:
    return Container(cls, Settings.from_env({"KEPU_JWT_SECRET": "s", **env}).nameko_config())


def test_a_service_states_its_own_pool_and_the_rest_get_ten():
    waiting, plain = _container(Waiting, {}), _container(Plain, {})
    assert waiting.max_workers == 24 and waiting._worker_pool.size == 24
    assert plain.max_workers == 10 and plain._worker_pool.size == 10


def test_kepu_max_workers_applies_to_every_service():
    for cls in (Waiting, Plain):
        container = _container(cls, {"KEPU_MAX_WORKERS": "32"})
        assert container.max_workers == 32 and container._worker_pool.size == 32


def test_the_runner_config_names_this_container():
    assert Settings().nameko_config()["SERVICE_CONTAINER_CLS"] == "services.kit.container.Container"
