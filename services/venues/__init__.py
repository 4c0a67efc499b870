"""Venues: venues, tutors, sessions and series, the catalogue, seat capacity and holds."""
