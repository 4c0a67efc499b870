"""gunicorn entry of the console and the gateway on one origin (`make run`, the test stack):
`gunicorn -c deploy/gunicorn.conf.py services.console.one_origin:application`."""

from services.console.front import build

application = build()
