"""Forgotten passwords: the same answer for everyone, a single-use link, every sign-in ended."""

from __future__ import annotations

import pytest

from services.identity.errors import TooManyRequests, Unauthenticated
from services.identity.tests.helpers import CLIENT, login, member, outbox_events
from services.kit.errors import Conflict, NotFound, ValidationFailed

NEW = "a-brand-new-secret-42"


def reset_token(repo):
    doc = repo.db.resets.find_one(sort=[("created_at", -1)])
    sent = outbox_events(repo.db.resets, doc["_id"], "identity.password_reset_requested")
    return sent[0]["data"]["link"].split("token=", 1)[1], sent[0]["data"]


def test_asking_answers_the_same_whether_or_not_there_is_an_account(repo):
    member(repo, "teacher@example.cn")
    assert repo.resets.request("teacher@example.cn", CLIENT) == \
        repo.resets.request("nobody@example.cn", CLIENT)
    assert repo.db.resets.count_documents({}) == 1


def test_the_link_sets_a_new_password_once_and_ends_every_sign_in(repo):
    joined = member(repo, "teacher@example.cn")
    pair = login(repo, "teacher@example.cn")
    repo.resets.request("teacher@example.cn", CLIENT)
    token, sent = reset_token(repo)
    assert sent["channel"] == "email" and sent["contact_masked"] == "t***@example.cn"
    with pytest.raises(ValidationFailed):
        repo.resets.confirm(token, "password123", CLIENT)
    repo.resets.confirm(token, NEW, CLIENT)
    with pytest.raises(Conflict):
        repo.resets.confirm(token, NEW + "x", CLIENT)
    with pytest.raises(Unauthenticated):
        repo.sessions.refresh(pair["refresh_token"], CLIENT)
    with pytest.raises(Unauthenticated):
        login(repo, "teacher@example.cn")
    login(repo, "teacher@example.cn", NEW)
    assert outbox_events(repo.db.users, joined["user_id"], "identity.user_cutoff")


def test_a_link_expires_after_an_hour_and_a_forged_one_is_refused(repo, now):
    member(repo, "teacher@example.cn")
    repo.resets.request("teacher@example.cn", CLIENT)
    token, _ = reset_token(repo)
    with pytest.raises(NotFound):
        repo.resets.confirm(token[:-3] + "abc", NEW, CLIENT)
    now.move(3601)
    with pytest.raises(Conflict):
        repo.resets.confirm(token, NEW, CLIENT)


def test_asking_again_and_again_meets_a_wait(repo):
    for _ in range(4):
        repo.resets.request("someone@example.cn", CLIENT)
    with pytest.raises(TooManyRequests):
        repo.resets.request("someone@example.cn", CLIENT)
