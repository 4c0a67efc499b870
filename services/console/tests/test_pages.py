"""Pages built from the API: errors beside their fields, typing kept, scoping, the consent
page, label folding, pagination and empty states."""

from __future__ import annotations

from services.console.tests.conftest import csrf_of, sign_in_as

SESSION = {"session_id": "ses_1", "venue_id": "ven_1", "title": "星空探秘", "category": "science",
           "audience": "students", "grades": [5, 6], "starts_at": "2026-12-20T01:00:00Z",
           "ends_at": "2026-12-20T03:00:00Z", "capacity": 100, "seats_left": 60, "price_fen": 0,
           "claim_policy": "first_come", "cancel_cutoff_hours": 48, "status": "open",
           "timezone": "Asia/Shanghai", "venue": {"name": "上海科技馆", "address": "世纪大道"},
           "min_teachers_per_students": {"teachers": 1, "per_students": 20}}
ROSTERS = {"items": [{"label": "五年级(1)班", "pupil_count": 41, "guardian_count": 41,
                      "version": 1, "updated_at": "2026-11-01T00:00:00Z"},
                     {"label": "五年级(2)班", "pupil_count": 38, "guardian_count": 40,
                      "version": 1, "updated_at": "2026-11-01T00:00:00Z"}],
           "next_cursor": None}


def test_an_api_refusal_shows_beside_its_field_and_keeps_what_was_typed(client, fake) -> None:
    token = sign_in_as(client, fake, "venue", "ven_1")
    fake.on("POST", "/v1/venues/ven_1/sessions", (422, {
        "title": "Validation failed", "status": 422, "detail": "invalid fields: starts_at",
        "errors": {"starts_at": ["must be in the future"]}}))
    answer = client.post("/venue/sessions/new", data={
        "csrf_token": token, "title": "星空探秘：半日游", "category": "science",
        "audience": "students", "grade_min": "5", "grade_max": "6",
        "starts_at": "2020-01-01T09:00", "ends_at": "2020-01-01T11:00", "capacity": "１２０",
        "price": "12.5", "claim_policy": "first_come", "repeat": "once"})
    page = answer.get_data(as_text=True)
    assert answer.status_code == 422
    assert 'id="e-starts_at">须晚于现在' in page  # the API's English, in Chinese
    assert 'value="星空探秘：半日游"' in page and 'value="１２０"' in page
    sent = fake.sent("POST", "/v1/venues/ven_1/sessions")[0]
    assert sent["json"]["capacity"] == 120 and sent["json"]["price_fen"] == 1250
    assert sent["json"]["starts_at"] == "2020-01-01T09:00:00+08:00"
    assert sent["json"]["grades"] == [5, 6]
    assert sent["headers"]["Idempotency-Key"]


def test_a_bad_number_is_caught_before_the_api(client, fake) -> None:
    token = sign_in_as(client, fake, "venue", "ven_1")
    answer = client.post("/venue/sessions/new", data={
        "csrf_token": token, "title": "x", "category": "science", "audience": "students",
        "grade_min": "5", "grade_max": "6", "starts_at": "2030-01-01T09:00",
        "ends_at": "2030-01-01T11:00", "capacity": "一百", "price": "0", "repeat": "once"})
    assert answer.status_code == 422
    assert 'id="e-capacity"' in answer.get_data(as_text=True)
    assert not fake.sent("POST", "/v1/venues/ven_1/sessions")


def test_a_claim_names_classes_from_the_rosters_with_full_width_typing(client, fake) -> None:
    token = sign_in_as(client, fake, "school", "sch_1")
    fake.on("GET", "/v1/sessions/ses_1", (200, SESSION))
    fake.on("GET", "/v1/schools/sch_1/rosters", (200, ROSTERS))
    fake.on("POST", "/v1/claims", (201, {"claim_id": "clm_1", "status": "confirmed"}))
    form = client.get("/school/sessions/ses_1/claim").get_data(as_text=True)
    assert 'name="teachers_0" inputmode="numeric" value="3"' in form  # 41 pupils at 1 per 20
    assert "至少 1 名带队教师" in form or "每 20 名学生至少 1 名带队教师" in form
    answer = client.post("/school/sessions/ses_1/claim", data={
        "csrf_token": token, "classes": "五年级(1)班", "other_class": "五年级（2）班",
        "students_0": "41", "teachers_0": "3", "grade_0": "5",
        "students_1": "38", "teachers_1": "2", "grade_1": "5", "waitlist": "1"})
    assert answer.status_code == 303 and answer.headers["Location"] == "/school/claims/clm_1"
    body = fake.sent("POST", "/v1/claims")[0]["json"]
    assert [g["label"] for g in body["groups"]] == ["五年级(1)班", "五年级(2)班"]
    assert body["groups"][1] == {"label": "五年级(2)班", "grade": 5, "students": 38,
                                 "teachers": 2}


def test_an_unknown_typed_class_is_the_fields_error(client, fake) -> None:
    token = sign_in_as(client, fake, "school", "sch_1")
    fake.on("GET", "/v1/sessions/ses_1", (200, SESSION))
    fake.on("GET", "/v1/schools/sch_1/rosters", (200, ROSTERS))
    answer = client.post("/school/sessions/ses_1/claim", data={
        "csrf_token": token, "other_class": "六年级（9）班"})
    page = answer.get_data(as_text=True)
    assert answer.status_code == 422 and 'id="e-other_class"' in page
    assert 'value="六年级（9）班"' in page
    assert not fake.sent("POST", "/v1/claims")


def test_another_schools_claim_is_not_found(client, fake) -> None:
    sign_in_as(client, fake, "school", "sch_2")
    fake.on("GET", "/v1/claims/clm_1", (404, {"status": 404, "title": "Not found",
                                              "detail": "claim clm_1 not found"}))
    answer = client.get("/school/claims/clm_1")
    assert answer.status_code == 404
    assert "本校没有这个预约" in answer.get_data(as_text=True)


def test_a_page_for_another_role_says_so(client, fake) -> None:
    sign_in_as(client, fake, "school", "sch_1")
    answer = client.get("/finance/")
    assert answer.status_code == 403


def test_a_list_paginates_and_an_empty_one_says_what_to_do(client, fake) -> None:
    sign_in_as(client, fake, "school", "sch_1")
    fake.on("GET", "/v1/claims", (200, {"items": [], "next_cursor": None}))
    assert "在课程菜单中查找活动" in client.get("/school/claims").get_data(as_text=True)
    claim = {"claim_id": "clm_1", "session_id": "ses_1", "school_id": "sch_1", "seats": 40,
             "status": "waitlisted", "waitlist_position": 2,
             "groups": [{"label": "五年级(1)班", "grade": 5, "students": 38, "teachers": 2}],
             "trip": {"title": "星空探秘", "starts_at": "2026-12-20T01:00:00Z",
                      "timezone": "Asia/Shanghai"}}
    fake.on("GET", "/v1/claims", (200, {"items": [claim], "next_cursor": "@k1"}))
    page = client.get("/school/claims?status=waitlisted").get_data(as_text=True)
    assert "status=waitlisted&amp;cursor=@k1" in page
    assert "第 2 位" in page and "2026年12月20日（周日）09:00" in page


def test_the_consent_page_shows_the_trip_and_records_the_answer(client, fake) -> None:
    consent = {"claim_id": "clm_1", "claim_status": "confirmed", "school_name": "实验小学",
               "label": "五年级(1)班", "pupil": "小*", "answer": None,
               "expires_at": "2026-12-20T01:00:00Z",
               "trip": {"title": "星空探秘", "venue_name": "上海科技馆",
                        "venue_address": "世纪大道2000号", "starts_at": "2026-12-20T01:00:00Z",
                        "ends_at": "2026-12-20T03:00:00Z", "timezone": "Asia/Shanghai",
                        "local_time": "", "what_to_bring": "水杯", "price_fen": 1250}}
    fake.on("GET", "/v1/consents/tok.en", (200, consent))
    page = client.get("/v1/consents/tok.en").get_data(as_text=True)
    assert "世纪大道2000号" in page and "¥12.50" in page and "09:00" in page
    token = csrf_of(client, "/c/tok.en")
    fake.on("POST", "/v1/consents/tok.en", (200, {**consent, "answer": "yes"}))
    answered = client.post("/c/tok.en", data={"answer": "yes", "csrf_token": token})
    assert "您已同意" in answered.get_data(as_text=True)
    assert fake.sent("POST", "/v1/consents/tok.en")[0]["json"] == {"answer": "yes"}
    assert "Authorization" not in fake.sent("POST", "/v1/consents/tok.en")[0]["headers"]


def test_an_expired_consent_link_gets_a_clear_page(client, fake) -> None:
    fake.on("GET", "/v1/consents/old", (403, {"status": 403, "title": "Forbidden",
                                              "code": "consent-link-expired",
                                              "detail": "this consent link has expired"}))
    answer = client.get("/c/old?lang=en")
    assert answer.status_code == 403
    assert "This link has expired" in answer.get_data(as_text=True)


SURVEY = {"survey_id": "srv_1", "respondent": "guardian", "language": "zh-CN",
          "trip": {"kind": "claim", "title": "星空探秘", "venue_name": "上海科技馆",
                   "when": "12月20日 09:00"}, "pupil": "小*",
          "questions": [{"key": "content", "text": "内容"}, {"key": "organisation", "text": "组织"},
                        {"key": "safety", "text": "安全"}],
          "answer": None, "closes_at": "2026-12-30T00:00:00Z", "open": True}


def test_a_survey_link_asks_for_every_rating_and_keeps_the_ones_given(client, fake) -> None:
    fake.on("GET", "/v1/surveys/tok", (200, SURVEY))
    token = csrf_of(client, "/v1/surveys/tok")
    partial = client.post("/s/tok", data={"csrf_token": token, "content": "5",
                                          "comment": "很好"})
    page = partial.get_data(as_text=True)
    assert partial.status_code == 422 and "请为每个问题打 1 到 5 分" in page
    assert 'name="content" value="5" checked' in page and "很好" in page
    assert not fake.sent("POST", "/v1/surveys/tok")
    fake.on("POST", "/v1/surveys/tok", (201, {**SURVEY, "recorded": True}))
    done = client.post("/s/tok", data={"csrf_token": token, "content": "5",
                                       "organisation": "4", "safety": "5"})
    assert "感谢您的评价" in done.get_data(as_text=True)
    assert fake.sent("POST", "/v1/surveys/tok")[0]["json"] == {
        "ratings": {"content": 5, "organisation": 4, "safety": 5}}


def test_the_district_dashboard_reads_monitoring_for_the_persons_district(client, fake) -> None:
    sign_in_as(client, fake, "district", "dst_1")
    base = "/v1/monitoring/districts/dst_1/terms/2026-autumn"
    fake.on("GET", base, (200, {"district_id": "dst_1", "term": "2026-autumn",
                                "summary": {"trips": 12, "coverage_rate": 0.5},
                                "categories": [], "grades": [], "satisfaction": {},
                                "priority": {}, "scope": {}, "computed_at": "x"}))
    fake.on("GET", f"{base}/trend", (200, {"items": [{"week": "2026-11-02", "pupils": 80}],
                                           "totals": {}}))
    page = client.get("/admin/district?term=2026-autumn").get_data(as_text=True)
    assert "50.0%" in page and "data-chart-source=" in page and "2026-11-02" in page
    assert 'src="/static/vendor/echarts.min.js" integrity="sha384-' in page


def test_an_api_that_does_not_answer_is_try_again_later_not_a_dead_link(client, fake,
                                                                          monkeypatch) -> None:
    import requests

    from services.console import api as api_module

    class Down:
        def request(self, *args: object, **kwargs: object) -> None:
            raise requests.ConnectionError("refused")

    monkeypatch.setattr(api_module, "_session", lambda: Down())
    answer = client.get("/v1/consents/tok.en")
    assert answer.status_code == 502
    assert "请稍后再试" in answer.get_data(as_text=True)


def test_a_bug_is_logged_by_route_never_by_its_token(client, fake, monkeypatch, caplog) -> None:
    from services.console.views import parents

    def broken(token: str) -> None:
        raise RuntimeError(f"boom {token}")

    monkeypatch.setattr(parents, "_page", broken)
    answer = client.get("/c/secret-token-1234")
    assert answer.status_code == 500
    assert "secret-token-1234" not in caplog.text and "/c/<token>" in caplog.text
