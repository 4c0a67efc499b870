"""gunicorn settings for the gateway; every value can be overridden from the environment."""

import os

bind = os.environ.get("KEPU_GATEWAY_BIND", "127.0.0.1:8080")
worker_class = "gthread"
workers = int(os.environ.get("KEPU_GATEWAY_WORKERS", "2"))
threads = int(os.environ.get("KEPU_GATEWAY_THREADS", "16"))
timeout = 60
graceful_timeout = 15
keepalive = 5
accesslog = None
errorlog = "-"
loglevel = os.environ.get("KEPU_LOG_LEVEL", "info").lower()
