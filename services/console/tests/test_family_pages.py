"""The family booking pages, the door (check-in, takings) and teacher training, against a
faked API."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask.testing import FlaskClient

from services.console.app import create_app
from services.console.tests.conftest import FakeApi, csrf_of, sign_in_as

SESSION = {"session_id": "ses_1", "title": "亲子观星夜", "starts_at": "2026-07-10T12:00:00Z",
           "ends_at": "2026-07-10T14:00:00Z", "timezone": "Asia/Shanghai",
           "venue": {"name": "天文馆", "address": "临港大道380号"}, "seats_left": 12,
           "prices_fen": {"adult": 3000, "child": 1500, "student": 1000},
           "max_people_per_booking": 4, "cancel_cutoff_hours": 24}
BOOKING = {"booking_id": "adm_1", "status": "held", "adults": 2, "children": 1,
           "child_names": ["小明"], "mobile_masked": "139****0001", "fee_fen": 7500,
           "hold_expires_at": "2026-07-01T02:10:00Z", "ticket_code": None,
           "session": {"title": "亲子观星夜", "starts_at": "2026-07-10T12:00:00Z",
                       "timezone": "Asia/Shanghai", "venue_name": "天文馆",
                       "cancel_cutoff_hours": 24}}


@pytest.fixture()
def client(fake: FakeApi) -> Iterator[FlaskClient]:
    app = create_app({"KEPU_API_URL": "http://api.test", "KEPU_JWT_SECRET": "unit-secret"})
    with app.test_client() as test_client:
        yield test_client


def test_a_family_verifies_books_and_sees_the_held_booking(client, fake):
    fake.on("GET", "/v1/family/sessions/ses_1", (200, SESSION))
    fake.on("POST", "/v1/family/codes", (202, {"sent": True}))
    fake.on("POST", "/v1/family/verifications", (200, {"verification": "pass.mac"}))
    fake.on("POST", "/v1/family/sessions/ses_1/bookings",
            (201, {**BOOKING, "manage_token": "tok.mac"}))
    fake.on("GET", "/v1/family/bookings/tok.mac", (200, BOOKING))
    token = csrf_of(client, "/family/sessions/ses_1")
    client.post("/family/sessions/ses_1/code", data={"csrf_token": token,
                                                     "mobile": "１３９ 0000 0001"})
    assert fake.sent("POST", "/v1/family/codes")[0]["json"] == {"mobile": "13900000001"}
    page = client.get("/family/sessions/ses_1").get_data(as_text=True)
    assert "139****0001" in page and "13900000001" not in page
    client.post("/family/sessions/ses_1/verify", data={"csrf_token": token, "code": "123456"})
    answer = client.post("/family/sessions/ses_1/book", data={
        "csrf_token": token, "adults": "2", "children": "1", "child_names": "小明，"})
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/tok.mac")
    sent = fake.sent("POST", "/v1/family/sessions/ses_1/bookings")[0]
    assert sent["json"]["verification"] == "pass.mac" and sent["json"]["child_names"] == ["小明"]
    held = client.get("/family/bookings/tok.mac").get_data(as_text=True)
    assert "确认预约" in held and "75.00" in held


def test_a_wrong_code_shows_beside_the_field(client, fake):
    fake.on("GET", "/v1/family/sessions/ses_1", (200, SESSION))
    fake.on("POST", "/v1/family/codes", (202, {"sent": True}))
    fake.on("POST", "/v1/family/verifications", (422, {
        "status": 422, "title": "Unprocessable", "detail": "the code is wrong or has expired",
        "errors": {"code": ["wrong or expired"]}}))
    token = csrf_of(client, "/family/sessions/ses_1")
    client.post("/family/sessions/ses_1/code", data={"csrf_token": token,
                                                     "mobile": "13900000001"})
    answer = client.post("/family/sessions/ses_1/verify", data={"csrf_token": token,
                                                                "code": "000000"})
    assert answer.status_code == 422
    assert 'aria-invalid="true"' in answer.get_data(as_text=True)


def test_the_check_in_page_may_use_the_camera_and_says_a_repeat(client, fake):
    token = sign_in_as(client, fake, "venue", "ven_1")
    page = client.get("/venue/check-in")
    assert "camera=(self)" in page.headers["Permissions-Policy"]
    fake.on("POST", "/v1/venues/ven_1/check-ins", (200, {
        **BOOKING, "status": "confirmed", "repeated": True,
        "first_checked_in_at": "2026-07-10T11:50:00Z"}))
    again = client.post("/venue/check-in", data={"csrf_token": token, "code": "ABCDEFGH"})
    assert "已入场" in again.get_data(as_text=True)


def test_school_staff_book_training_seats_by_name(client, fake):
    token = sign_in_as(client, fake, "school", "sch_1")
    fake.on("GET", "/v1/sessions", (200, {"items": [{**SESSION, "session_id": "ses_t"}]}))
    fake.on("GET", "/v1/training/bookings", (200, {"items": []}))
    fake.on("POST", "/v1/training/sessions/ses_t/bookings", (201, {"bookings": [
        {"attendee": "王老师", "status": "confirmed"}]}))
    answer = client.post("/school/training/ses_t", data={
        "csrf_token": token, "attendees": "王老师，科学\n\n李老师"})
    sent = fake.sent("POST", "/v1/training/sessions/ses_t/bookings")[0]["json"]
    assert sent == {"attendees": [{"name": "王老师", "subject": "科学"},
                                  {"name": "李老师", "subject": None}]}
    assert "王老师: confirmed" in answer.get_data(as_text=True)


def test_the_public_list_shows_prices_per_category(client, fake):
    fake.on("GET", "/v1/family/sessions", (200, {"items": [SESSION], "next_cursor": None}))
    page = client.get("/family?free=1").get_data(as_text=True)
    assert "亲子观星夜" in page and "30.00" in page and "15.00" in page
    assert fake.sent("GET", "/v1/family/sessions")[0]["params"]["free"] == "true"


def test_the_family_pages_follow_the_guardians_language_through_the_catalogue(client, fake):
    fake.on("GET", "/v1/family/sessions/ses_1", (200, SESSION))
    fake.on("POST", "/v1/family/codes", (202, {"sent": True}))
    chinese = client.get("/family/sessions/ses_1").get_data(as_text=True)
    assert "发送验证码" in chinese and "Send code" not in chinese
    english = client.get("/family/sessions/ses_1?lang=en").get_data(as_text=True)
    assert "Send code" in english and "发送验证码" not in english
    token = csrf_of(client, "/family/sessions/ses_1?lang=en")
    sent = client.post("/family/sessions/ses_1/code", data={
        "csrf_token": token, "mobile": "13900000001", "lang": "en"})
    assert sent.headers["Location"].endswith("/family/sessions/ses_1?lang=en")
    page = client.get(sent.headers["Location"]).get_data(as_text=True)
    assert "A code was sent to 139****0001" in page


def test_the_door_and_training_pages_are_in_the_navigation(client, fake):
    sign_in_as(client, fake, "venue", "ven_1")
    page = client.get("/venue/check-in").get_data(as_text=True)
    assert 'href="/venue/check-in"' in page and 'href="/venue/takings"' in page
    assert "入场核验" in page and "微信支付" in page


def test_a_visitor_without_an_account_finds_the_family_sessions():
    app = create_app({"KEPU_API_URL": "http://api.test", "KEPU_JWT_SECRET": "unit-secret"})
    with app.test_client() as visitor:
        front = visitor.get("/")
        assert front.status_code == 302 and "/login" in front.headers["Location"]
        assert 'href="/family"' in visitor.get("/login").get_data(as_text=True)


def test_school_staff_see_teacher_training_in_the_navigation(client, fake):
    sign_in_as(client, fake, "school", "sch_1")
    fake.on("GET", "/v1/sessions", (200, {"items": []}))
    fake.on("GET", "/v1/training/bookings", (200, {"items": []}))
    page = client.get("/school/training").get_data(as_text=True)
    assert 'href="/school/training"' in page and "暂时没有开放预约的教师培训" in page
