"""Identity: districts as organisations, people, memberships, invitations, sign-in,
refresh tokens, API keys and the audit trail (DESIGN.md; docs/identity.md)."""
