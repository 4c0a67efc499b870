"""How the bench matches an e-mail to the claim it announces (bench/run.py)."""

from __future__ import annotations

from bench.run import trip_in

TITLES = [f"寒假科学课 #{n}" for n in range(50)]


def test_an_email_is_matched_to_its_own_trip_not_one_whose_title_it_contains():
    assert trip_in("您孩子将参加「寒假科学课 #17」活动", TITLES) == "寒假科学课 #17"
    assert trip_in("您孩子将参加「寒假科学课 #1」活动", TITLES) == "寒假科学课 #1"
    assert trip_in("您孩子将参加「寒假科学课 #4」活动", TITLES) == "寒假科学课 #4"


def test_an_email_about_no_known_trip_is_matched_to_none():
    assert trip_in("您孩子将参加「星空探秘」活动", TITLES) is None
