"""Notifications: see DESIGN.md."""
