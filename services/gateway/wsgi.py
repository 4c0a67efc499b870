"""gunicorn entry: `gunicorn -c deploy/gunicorn.conf.py services.gateway.wsgi:application`.

Each worker process imports this module, so each builds its own app: its own revocation
listener and audit buffer, flushed when the worker exits (atexit)."""

from __future__ import annotations

import atexit

from services.gateway.app import create_app
from services.kit import logs
from services.kit.config import Settings

_settings = Settings.from_env()
logs.configure("gateway", _settings.log_level)
application = create_app(_settings)
atexit.register(application.close)
