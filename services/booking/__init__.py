"""Booking: schools, claims, batch claims, allocation, waitlists, attendance, tutor visits."""
