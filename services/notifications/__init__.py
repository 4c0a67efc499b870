"""Notifications: rosters, guardians, consent, surveys, templates, channels and the delivery
log (docs/notifications.md)."""
