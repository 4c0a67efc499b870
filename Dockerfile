# One image for every Kepu process; the command picks which one runs:
#   python -m services.kit.runner venues|booking|notifications|funding
#   python -m services.kit.relay
#   python -m gunicorn -c deploy/gunicorn.conf.py services.gateway.wsgi:application
#   python -m gunicorn -c deploy/gunicorn.conf.py services.console.wsgi:application
#   python -m gunicorn -c deploy/gunicorn.conf.py services.console.one_origin:application
# Build from the repository root: docker build -t kepu:dev .
# The base is pinned to an exact release; pin its digest too where the registry is reachable
# (docker buildx imagetools inspect python:3.11.11-slim-bookworm) by adding @sha256:<digest>.
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY requirements.txt ./
# The pinned closure, less what only the tests and tools need (the browser driver, the
# fuzzer, pytest, the linters, deploy/check.py's validators, and their own dependencies).
# deploy/check.py keeps this list honest both ways: every package only they pull in is on it,
# nothing the runtime requires is. The list's continuation lines start at column 0 (Docker
# joins them as they are: an indent would end up inside the pattern).
RUN grep -viE '^(aiosmtpd|anyio|atpublic|attrs|graphql-core|harfile|hypothesis|\
hypothesis-graphql|importlib_resources|iniconfig|jsonschema|jsonschema-specifications|\
jsonschema_rs|kubernetes-validate|markdown-it-py|mdurl|pathspec|playwright|pluggy|pyee|\
py-spy|Pygments|pyrate-limiter|pytest|pytest-timeout|referencing|rich|rpds-py|ruff|\
schemathesis|sortedcontainers|typing_extensions|yamllint)==' \
        requirements.txt > runtime-requirements.txt \
    && python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-deps -r runtime-requirements.txt \
    && /opt/venv/bin/pip check

FROM ${PYTHON_IMAGE} AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    KEPU_GATEWAY_BIND=0.0.0.0:8080 \
    KEPU_HEARTBEAT_FILE=/tmp/kepu.alive
RUN groupadd --system --gid 10001 kepu \
    && useradd --system --uid 10001 --gid kepu --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin kepu
WORKDIR /app
COPY --from=build /opt/venv /opt/venv
COPY pyproject.toml ./
COPY services/ services/
COPY deploy/ deploy/
# Bytecode now: the root filesystem is read-only at run time.
RUN python -m compileall -q services deploy
USER 10001:10001
EXPOSE 8080
# No default process: a container must say which one it runs (this prints the choices).
CMD ["python", "-m", "services.kit.runner"]
