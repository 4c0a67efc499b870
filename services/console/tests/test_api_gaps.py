"""The pages that use the API gaps closed later: a consent reminder, the allocation's
explanation, the venue's consent progress, organisation names in the switcher, venues and
schools lists, and people's names on a payout run."""

from __future__ import annotations

from services.console.tests.conftest import csrf_of, sign_in_as

TRIP = {"title": "星空探秘", "venue_name": "上海天文馆", "starts_at": "2026-12-20T01:00:00Z",
        "ends_at": "2026-12-20T03:00:00Z", "timezone": "Asia/Shanghai"}
CLAIM = {"claim_id": "clm_1", "session_id": "ses_1", "school_id": "sch_1",
         "status": "confirmed", "seats": 44, "trip": TRIP, "history": [],
         "groups": [{"label": "五年级(1)班", "students": 40, "teachers": 4}]}
CONSENTS = {"claim_id": "clm_1", "claim_status": "confirmed",
            "summary": {"pupils": 3, "yes": 1, "no": 0, "pending": 2},
            "items": [], "labels_without_roster": []}
ALLOCATION = {"session_id": "ses_1", "state": "completed", "closes_at": "2026-12-01T00:00:00Z",
              "rules": ["priority_school"], "seed": "5eed" * 8, "seats_left": 60,
              "planned_at": "2026-12-01T00:00:01Z", "claims": 7, "reproduced": True,
              "items": [{"claim_id": "clm_1", "school_id": "sch_1", "rank": 3,
                         "outcome": "partial", "placed": ["五年级(1)班"],
                         "waiting": ["五年级(2)班"], "priority_school": False,
                         "confirmed_visits": 2, "no_shows": 0, "lottery": "abcdef0123456789",
                         "reason": "ranked 3 of 7"}]}


def school_claim(fake) -> None:
    fake.on("GET", "/v1/claims/clm_1", (200, CLAIM))
    fake.on("GET", "/v1/claims/clm_1/consents", (200, CONSENTS))


def test_the_claim_page_explains_the_allocation_of_a_window_session(client, fake) -> None:
    sign_in_as(client, fake, "school", "sch_1")
    school_claim(fake)
    fake.on("GET", "/v1/sessions/ses_1/allocation", (200, ALLOCATION))
    page = client.get("/school/claims/clm_1").get_data(as_text=True)
    assert "座位如何分配" in page and "第 3 / 7 位" in page
    assert "五年级(1)班 获得座位；五年级(2)班 候补" in page
    assert "抽签号 abcdef01" in page and "5eed5eed" in page


def test_a_first_come_session_shows_no_allocation(client, fake) -> None:
    sign_in_as(client, fake, "school", "sch_1")
    school_claim(fake)  # the allocation route answers 404
    page = client.get("/school/claims/clm_1").get_data(as_text=True)
    assert "座位如何分配" not in page and "提醒尚未回复的家长" in page


def test_the_reminder_button_asks_the_api_once_and_says_what_went(client, fake) -> None:
    token = sign_in_as(client, fake, "school", "sch_1")
    school_claim(fake)
    fake.on("POST", "/v1/claims/clm_1/consents/remind", (201, {
        "claim_id": "clm_1", "reminder_id": "rmd_1", "reminded_at": "2026-12-02T12:00:00Z",
        "next_at": "2026-12-03T00:00:00Z", "pupils": 2, "messages": 3, "deferred": 1,
        "suppressed": 0}), (429, {"title": "Too many requests", "status": 429,
                                   "detail": "reminded less than 12 hours ago",
                                   "code": "consent-reminder-too-soon"}))
    done = client.post("/school/claims/clm_1/consents/remind", data={"csrf_token": token})
    page = done.get_data(as_text=True)
    assert done.status_code == 200 and "已向 2 名学生的家长发送提醒" in page
    assert "其中 1 条短信或微信消息" in page
    sent = fake.sent("POST", "/v1/claims/clm_1/consents/remind")
    assert len(sent) == 1 and sent[0]["headers"]["Idempotency-Key"]
    again = client.post("/school/claims/clm_1/consents/remind", data={"csrf_token": token})
    assert again.status_code == 429
    assert "reminded less than 12 hours ago" in again.get_data(as_text=True)


def test_the_venue_session_page_shows_consent_counts_per_confirmed_claim(client, fake) -> None:
    sign_in_as(client, fake, "venue", "ven_1")
    fake.on("GET", "/v1/sessions/ses_1", (200, {
        "session_id": "ses_1", "venue_id": "ven_1", "title": "星空探秘", "status": "open",
        "starts_at": "2030-12-20T01:00:00Z", "ends_at": "2030-12-20T03:00:00Z",
        "timezone": "Asia/Shanghai", "capacity": 100, "seats_left": 12, "price_fen": 0,
        "grades": [5, 6]}))
    fake.on("GET", "/v1/claims", (200, {"items": [
        {**CLAIM, "trip": {**TRIP, "school_name": "实验小学"}},
        {**CLAIM, "claim_id": "clm_2", "status": "waitlisted", "waitlist_position": 1}],
        "next_cursor": None}))
    fake.on("GET", "/v1/consent-summaries", (200, {"items": [
        {"claim_id": "clm_1", "claim_status": "confirmed", "summary": CONSENTS["summary"]}],
        "next_cursor": None}))
    page = client.get("/venue/sessions/ses_1").get_data(as_text=True)
    assert "家长同意情况" in page and "同意 1 · 不同意 0 · 未回复 2（共 3 名学生）" in page
    asked = fake.sent("GET", "/v1/consent-summaries")
    assert [c["params"]["claim_ids"] for c in asked] == ["clm_1"]  # confirmed claims only


def test_the_switcher_shows_organisation_names(client, fake) -> None:
    fake.on("POST", "/v1/auth/login", (200, {"access_token": "a", "refresh_token": "r",
                                             "user_id": "usr_1", "org_id": "sch_1",
                                             "role": "school"}))
    fake.on("GET", "/v1/me", (200, {
        "user_id": "usr_1", "display_name": "李老师",
        "acting": {"org_id": "sch_1", "role": "school", "org_name": "实验小学"},
        "memberships": [
            {"org_id": "sch_1", "role": "school", "org_name": "实验小学", "org_kind": "school"},
            {"org_id": "ven_1", "role": "venue", "org_name": "上海天文馆",
             "org_kind": "venue"}]}))
    fake.on("GET", "/v1/sessions", (200, {"items": [], "next_cursor": None}))
    fake.on("GET", "/v1/schools/sch_1", (200, {"school_id": "sch_1", "name": "实验小学",
                                               "location": {"lat": 31.2, "lon": 121.5}}))
    token = csrf_of(client)
    client.post("/login", data={"identifier": "li@example.cn", "password": "pw",
                                "csrf_token": token})
    page = client.get("/school/menu").get_data(as_text=True)
    assert ">上海天文馆 (venue)</option>" in page and "李老师 · 实验小学" in page
    assert not fake.sent("GET", "/v1/venues/ven_1")


def test_admin_lists_venues_by_kind_and_schools(client, fake) -> None:
    sign_in_as(client, fake, "admin", None)
    fake.on("GET", "/v1/venues", (200, {"items": [
        {"venue_id": "ven_1", "name": "上海动物园", "kind": "zoo", "district": "长宁区",
         "address": "虹桥路2381号"}], "next_cursor": "ven_1"}))
    fake.on("GET", "/v1/schools", (200, {"items": [], "next_cursor": None}))
    page = client.get("/admin/venues?kind=zoo").get_data(as_text=True)
    assert "上海动物园" in page and "cursor=ven_1" in page
    assert fake.sent("GET", "/v1/venues")[0]["params"]["kind"] == "zoo"
    empty = client.get("/admin/schools").get_data(as_text=True)
    assert "这里还没有登记学校" in empty


def test_a_payout_run_names_who_created_and_approved_it(client, fake) -> None:
    sign_in_as(client, fake, "finance", "dis_1")
    fake.on("GET", "/v1/funding/payout-runs/run_1", (200, {
        "run_id": "run_1", "code": "PR-1", "term": "2026-autumn", "state": "approved",
        "lines": 1, "total_fen": 100, "created_by": "usr_a", "approved_by": "usr_b",
        "created_at": "2026-12-01T00:00:00Z"}))
    fake.on("GET", "/v1/funding/payout-runs/run_1/lines", (200, {"items": [],
                                                                 "next_cursor": None}))
    fake.on("GET", "/v1/people", (200, {"items": [
        {"user_id": "usr_a", "display_name": "财务 刘"},
        {"user_id": "usr_b", "display_name": "财务 陈"}], "next_cursor": None}))
    page = client.get("/finance/payouts/run_1").get_data(as_text=True)
    assert "财务 刘" in page and "财务 陈" in page
    assert fake.sent("GET", "/v1/people")[0]["params"] == {"ids": "usr_a,usr_b"}
