"""gunicorn entry: `gunicorn -c deploy/gunicorn.conf.py services.gateway.wsgi:application`."""

from __future__ import annotations

from services.gateway.app import create_app
from services.kit import logs
from services.kit.config import Settings

_settings = Settings.from_env()
logs.configure("gateway", _settings.log_level)
application = create_app(_settings)
