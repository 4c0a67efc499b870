"""gunicorn entry of the console alone (its own Deployment behind the ingress):
`gunicorn services.console.wsgi:application`. services/console/one_origin.py is the console
and the gateway on one origin, for `make run` and the test stack."""

from services.console.app import create_app

application = create_app()
