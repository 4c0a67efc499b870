"""Identity: districts as organisations, people, memberships, invitations, sign-in,
refresh tokens, API keys and the audit trail (docs/identity.md)."""
