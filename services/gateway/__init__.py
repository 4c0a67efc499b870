"""The public HTTP API: auth, validation, OpenAPI, problem+json errors, idempotency."""
