"""Make sure a RabbitMQ broker answers at AMQP_URL, installing one on a Debian machine.

`python -m deploy.broker ensure` exits 0 when the broker answers. If nothing answers at a
local address and this is Debian with root, it installs `rabbitmq-server` and starts it;
otherwise it says what to do and exits 1. Also: vhost helpers the tests use.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from urllib.parse import urlparse

import pika
import pika.exceptions

DEFAULT = "amqp://guest:guest@127.0.0.1:5672/"


def answers(url: str, timeout: float = 3.0) -> bool:
    params = pika.URLParameters(url)
    params.socket_timeout = timeout
    params.connection_attempts = 1
    try:
        pika.BlockingConnection(params).close()
        return True
    except (pika.exceptions.AMQPError, OSError):
        return False


def _local(url: str) -> bool:
    return (urlparse(url).hostname or "") in ("127.0.0.1", "localhost", "::1")


def _run(cmd: list[str]) -> int:
    print("+", " ".join(cmd), flush=True)
    return subprocess.call(cmd)


def ensure(url: str) -> int:
    if answers(url):
        return 0
    can_install = _local(url) and os.path.exists("/etc/debian_version") and os.geteuid() == 0
    if not can_install:
        print(f"No RabbitMQ broker answers at {url}.\n"
              "Start one (Debian: `sudo apt-get install rabbitmq-server`), or point AMQP_URL "
              "at a running broker, e.g. AMQP_URL=amqp://user:pass@host:5672/ make run",
              file=sys.stderr)
        return 1
    if shutil.which("rabbitmq-server") is None:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.call(["apt-get", "update", "-q"], env=env)
        if subprocess.call(["apt-get", "install", "-y", "-q", "rabbitmq-server"], env=env):
            print("Installing rabbitmq-server failed; install it by hand.", file=sys.stderr)
            return 1
    if _run(["service", "rabbitmq-server", "start"]) != 0:
        _run(["rabbitmq-server", "-detached"])
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if answers(url):
            print("RabbitMQ is up.")
            return 0
        time.sleep(1)
    print(f"RabbitMQ was started but does not answer at {url}.", file=sys.stderr)
    return 1


def vhost_url(url: str, vhost: str) -> str:
    parsed = urlparse(url)
    return parsed._replace(path="/" + vhost).geturl()


def rabbitmqctl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["rabbitmqctl", "-q", *args], capture_output=True, text=True,
                          check=False, timeout=60)


def create_vhost(name: str, user: str = "guest") -> None:
    for args in (("add_vhost", name), ("set_permissions", "-p", name, user, ".*", ".*", ".*")):
        result = rabbitmqctl(*args)
        if result.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)}: {result.stderr.strip()}")


def delete_vhost(name: str) -> None:
    rabbitmqctl("delete_vhost", name)


def list_vhosts() -> list[str]:
    result = rabbitmqctl("list_vhosts", "name")
    return [line.strip() for line in result.stdout.splitlines() if line.strip()]


if __name__ == "__main__":
    if sys.argv[1:] != ["ensure"]:
        sys.exit("usage: python -m deploy.broker ensure")
    sys.exit(ensure(os.environ.get("AMQP_URL", DEFAULT)))
