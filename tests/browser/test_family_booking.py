"""A family books a holiday 亲子 session on a phone, in real Chromium: find the session,
verify the mobile with the SMS code, choose adults and children, confirm, see the e-ticket
(QR code and short code); then the venue's staff check the ticket in at the door page.

The pages are the stack's own console (services/console/views/family.py, door.py), served
at `/` by the test stack like every other page (tests/browser/test_journeys.py).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.sync_api import Browser, expect

from tests.browser.conftest import PHONE, accessible, new_page, shoot, sign_in
from tests.support import wait_for

pytestmark = pytest.mark.stack


def test_a_family_books_on_a_phone_and_is_checked_in(browser: Browser, stack: Any, api: Any,
                                                     sinks: Any, provision: Any) -> None:
    venue = api.register_venue(name="上海天文馆")
    staff = api.as_("venue", venue["venue_id"])
    starts = datetime.now(UTC) + timedelta(days=12)
    session = staff.post(f"/v1/venues/{venue['venue_id']}/sessions", json={
        "title": "寒假亲子观星夜", "category": "science", "audience": "family",
        "grades": [1, 9], "starts_at": starts.isoformat(),
        "ends_at": (starts + timedelta(hours=2)).isoformat(), "capacity": 30,
        "price_fen": 2000, "prices_fen": {"adult": 3000, "child": 1500},
        "max_people_per_booking": 4})
    assert session.status_code == 201, session.text
    session_id = session.json()["session_id"]
    phone = "13912340001"

    page = new_page(browser, stack.url, viewport=PHONE, is_mobile=True, has_touch=True)
    try:
        page.goto("/")  # a visitor without an account lands on the sign-in page
        page.get_by_role("link", name="亲子科普活动").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("亲子科普活动")
        page.goto(f"/family?from={starts.date().isoformat()}")
        card = page.locator("li.card", has_text="寒假亲子观星夜")
        expect(card).to_contain_text("30.00")
        accessible(page)
        shoot(page, "family-sessions-phone")
        card.get_by_role("link", name="预约").click()
        page.get_by_label("手机号").fill(phone)
        page.get_by_role("button", name="发送验证码").click()
        expect(page.get_by_role("status")).to_contain_text("139****0001")
        [sms] = wait_for(lambda: sinks.http.to(phone, "/sms"), message="the code SMS")
        page.get_by_label("验证码").fill(re.search(r"[0-9]{6}", sms.body["text"]).group(0))
        page.get_by_role("button", name="验证").click()
        page.get_by_label("成人人数").select_option("2")
        page.get_by_label("儿童人数").select_option("1")
        page.get_by_label("儿童姓名（可选，用逗号分隔）").fill("小明")
        accessible(page)
        shoot(page, "family-book-phone")
        page.get_by_role("button", name="预约座位").click()
        expect(page.locator("#booking-status")).to_contain_text("座位已为您保留")
        expect(page.locator("dl.trip")).to_contain_text("75.00")
        page.get_by_role("button", name="确认预约").click()
        expect(page.locator("#booking-status")).to_contain_text("预约成功")
        ticket = page.locator("#ticket-code").inner_text()
        assert re.fullmatch(r"[A-Z2-9]{8}", ticket)
        qr = page.get_by_role("img", name="入场二维码")
        expect(qr).to_be_visible()
        wait_for(lambda: qr.evaluate("i => i.complete && i.naturalWidth > 0"),
                 message="the QR code drawn")
        accessible(page)
        shoot(page, "family-ticket-phone")
    finally:
        page.context.close()

    wait_for(lambda: [m for m in sinks.http.to(phone, "/sms") if ticket in m.body["text"]],
             message="the ticket SMS")
    door = new_page(browser, stack.url)
    try:
        sign_in(door, provision("venue", venue["venue_id"], "入场核验员"))
        door.get_by_role("navigation").get_by_role("link", name="入场核验").click()
        door.wait_for_url("**/venue/check-in")
        accessible(door)
        door.get_by_label("票码").fill(ticket)
        door.get_by_label("到场支付方式").select_option("wechat_pay")
        door.get_by_role("button", name="核验", exact=True).click()
        result = door.locator("#check-in-result")
        expect(result).to_contain_text("寒假亲子观星夜")
        expect(result).to_contain_text("75.00")
        expect(result).to_contain_text("微信支付")
        accessible(door)
        shoot(door, "venue-check-in")
    finally:
        door.context.close()
    register = staff.get(f"/v1/sessions/{session_id}/register").json()["items"]
    assert [(r["mobile_masked"], r["child_names"], bool(r["checked_in_at"]))
            for r in register] == [("139****0001", ["小明"], True)]
