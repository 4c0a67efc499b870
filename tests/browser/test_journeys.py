"""One journey per role, end to end in a real browser, in the order the work happens:

a venue publishes a session → a school finds it near them and claims two classes → a parent
consents through the link on a phone → a tutor visit is booked, delivered and confirmed →
finance approves its subsidy and a second finance person approves the payout run and
exports it → the venue records attendance once the session has started.

Plus the safety checks: a form without its CSRF token is refused; a school person cannot
open another school's claim; a bad form value shows its field's error and keeps the typing.
The tests of this module share one world (module fixture) and run in file order.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests
from playwright.sync_api import Browser, Page, expect

from services.contracts.terms import term_of
from tests.browser.conftest import PHONE, Person, accessible, new_page, shoot, sign_in
from tests.support import wait_for

pytestmark = pytest.mark.stack
SHANGHAI = ZoneInfo("Asia/Shanghai")
CONSENT_URL = re.compile(r"(https?://\S+/v1/consents/[A-Za-z0-9_.-]+)")
TERM_RATES = {"junior": 6_000, "intermediate": 8_000, "senior": 10_000, "expert": 15_000}
LEAD_S = 75  # the session starts this long after publishing: claims and consent come first


def named(label: str) -> re.Pattern[str]:
    """A control's label exactly, with or without the required-field star."""
    return re.compile(rf"^{re.escape(label)}( \*)?$")


def local_minute(moment: datetime) -> str:
    return moment.astimezone(SHANGHAI).strftime("%Y-%m-%dT%H:%M")


def local_second(moment: datetime) -> str:
    return moment.astimezone(SHANGHAI).strftime("%Y-%m-%dT%H:%M:%S")


@pytest.fixture(scope="module")
def world(stack: Any, api: Any, provision: Any) -> dict[str, Any]:
    """A district with a venue and two schools, their people, a roster, money for tutors."""
    tag = uuid.uuid4().hex[:6]
    district = api.admin.post("/v1/districts", json={
        "name": f"浦东新区{tag}", "code": f"31{tag}", "timezone": "Asia/Shanghai"})
    assert district.status_code == 201, district.text
    district = district.json()
    where = {"district_id": district["district_id"]}

    def registered(path: str, body: dict[str, Any]) -> dict[str, Any]:
        """Registered once venues and booking have heard of the new district (an event)."""
        def attempt() -> dict[str, Any] | None:
            answer = api.admin.post(path, json=body)
            return answer.json() if answer.status_code == 201 else None
        return wait_for(attempt, timeout=30, interval=0.3, message=f"POST {path}")

    place = {"kind": "science_museum", "location": {"lat": 31.2196, "lon": 121.5447},
             "address": "上海市浦东新区世纪大道2000号", **where}
    venue = registered("/v1/venues", {"name": f"上海科技馆{tag}", **place})
    pupils = {"rural": False, "under_resourced": False, "students": 800, **where}
    school = registered("/v1/schools", {"name": f"实验小学{tag}", **pupils,
                                        "location": {"lat": 31.2250, "lon": 121.54}})
    other = registered("/v1/schools", {"name": f"育才小学{tag}", **pupils,
                                       "location": {"lat": 31.2304, "lon": 121.52}})
    people = {
        "venue": provision("venue", venue["venue_id"], "王老师"),
        "school": provision("school", school["school_id"], "李老师"),
        "other_school": provision("school", other["school_id"], "赵老师"),
        "finance": provision("finance", district["district_id"], "陈会计"),
        "checker": provision("finance", district["district_id"], "周出纳"),
    }
    guardians = [f"parent{i}.{tag}@example.cn" for i in range(3)]
    roster = "pupil,pupil_ref,guardian,relation,phone,email,wechat_openid,language,channel\n"
    roster += "".join(f"学生{i},{i:03d},家长{i},母亲,,{g},,zh-CN,email\n"
                      for i, g in enumerate(guardians))
    school_api = api.as_("school", school["school_id"])
    put = school_api.put(f"/v1/schools/{school['school_id']}/rosters/五年级(1)班",
                         data=roster.encode(), headers={"Content-Type": "text/csv"})
    assert put.status_code == 200, put.text
    money = api.as_("finance", district["district_id"])
    today = datetime.now(UTC)
    card = money.post("/v1/funding/rate-cards", json={
        "effective_from": (today.astimezone(SHANGHAI).date() - timedelta(days=30)).isoformat(),
        "rates": TERM_RATES})
    assert card.status_code == 201, card.text
    return {"tag": tag, "district": district, "venue": venue, "school": school,
            "other": other, "people": people, "guardians": guardians,
            "term": term_of(today), "roster": roster}


@pytest.fixture(scope="module")
def desk(browser: Browser, stack: Any) -> dict[str, Page]:
    """One signed-in page per person (desktop), made on first use."""
    pages: dict[str, Page] = {}
    yield pages
    for page in pages.values():
        page.context.close()


def page_of(desk: dict[str, Page], browser: Browser, stack: Any, person: Person) -> Page:
    if person.identifier not in desk:
        page = new_page(browser, stack.url)
        sign_in(page, person)
        desk[person.identifier] = page
    return desk[person.identifier]


state: dict[str, Any] = {}


def test_a_bad_form_value_shows_the_fields_error_and_keeps_what_was_typed(
        browser: Browser, stack: Any, world: dict[str, Any], desk: dict[str, Page]) -> None:
    page = page_of(desk, browser, stack, world["people"]["venue"])
    page.goto("/venue/sessions/new")
    page.get_by_label("标题").fill("星空探秘：天文馆半日游")
    page.get_by_label(named("起始年级")).select_option("5")
    page.get_by_label(named("截止年级")).select_option("6")
    past = datetime.now(UTC) - timedelta(days=2)
    page.get_by_label(named("开始")).fill(local_minute(past))
    page.get_by_label(named("结束")).fill(local_minute(past + timedelta(hours=2)))
    page.get_by_label(named("座位")).fill("一百")  # not a number
    page.get_by_role("button", name="发布").click()
    expect(page.locator("#e-capacity")).to_contain_text("整数")
    expect(page.get_by_label("标题")).to_have_value("星空探秘：天文馆半日游")
    expect(page.get_by_label(named("座位"))).to_have_value("一百")
    expect(page.get_by_label(named("起始年级"))).to_have_value("5")
    page.get_by_label(named("座位")).fill("100")
    page.get_by_role("button", name="发布").click()  # now the API refuses the past start
    expect(page.locator("#e-starts_at")).to_be_visible()
    expect(page.get_by_label(named("座位"))).to_have_value("100")
    shoot(page, "venue-publish-error")


def test_venue_publishes_a_session(browser: Browser, stack: Any, world: dict[str, Any],
                                   desk: dict[str, Page]) -> None:
    page = page_of(desk, browser, stack, world["people"]["venue"])
    page.goto("/venue/sessions/new")
    accessible(page)
    start = (datetime.now(UTC) + timedelta(seconds=LEAD_S)).replace(microsecond=0)
    page.get_by_label("标题").fill(f"星空探秘：天文馆半日游 {world['tag']}")
    page.get_by_label(named("起始年级")).select_option("5")
    page.get_by_label(named("截止年级")).select_option("6")
    page.get_by_label(named("开始")).fill(local_second(start))
    page.get_by_label(named("结束")).fill(local_second(start + timedelta(hours=2)))
    page.get_by_label(named("座位")).fill("120")
    page.get_by_label("携带物品").fill("学生证、水杯")
    shoot(page, "venue-publish")
    page.get_by_role("button", name="发布").click()
    expect(page.get_by_role("status")).to_contain_text("已发布")
    state["session_id"] = page.url.split("/sessions/")[1].split("?")[0]
    state["starts_at"] = start
    page.goto("/venue/")
    expect(page.get_by_role("link", name=f"星空探秘：天文馆半日游 {world['tag']}")).to_be_visible()
    accessible(page)
    shoot(page, "venue-sessions")


def test_school_finds_it_nearby_and_claims_two_classes(
        browser: Browser, stack: Any, world: dict[str, Any], desk: dict[str, Page]) -> None:
    page = page_of(desk, browser, stack, world["people"]["school"])
    # a second class's roster, uploaded through the console (CSV file)
    page.goto("/school/rosters")
    page.get_by_label(named("班级")).fill("五年级(2)班")
    page.get_by_label("CSV 或 XLSX 文件").set_input_files(files=[{
        "name": "roster.csv", "mimeType": "text/csv",
        "buffer": world["roster"].replace("学生", "小明").encode()}])
    page.get_by_role("button", name="上传").click()
    expect(page.get_by_role("status")).to_contain_text("名单已保存")
    accessible(page)
    page.goto("/school/?km=5&grade=5")
    title = f"星空探秘：天文馆半日游 {world['tag']}"
    row = page.get_by_role("row").filter(has_text=title)
    expect(row).to_contain_text("km")
    accessible(page)
    shoot(page, "school-menu")
    page.get_by_label("显示方式").select_option("week")
    page.get_by_role("button", name="搜索").click()
    expect(page.locator(".week")).to_be_visible()
    shoot(page, "school-menu-week")
    page.goto("/school/?km=5&grade=5")
    page.get_by_role("row").filter(has_text=title).get_by_role("link", name="预约座位").click()
    page.get_by_role("checkbox", name="五年级(1)班").check()
    page.get_by_label("或输入班级").fill("五年级（2）班")  # full-width brackets, as typed
    accessible(page)
    shoot(page, "school-claim")
    page.get_by_role("button", name="预约座位").click()
    expect(page.locator("h1")).to_contain_text("已确认")
    expect(page.locator("dl.facts")).to_contain_text("五年级(2)班")
    state["claim_id"] = page.url.rsplit("/", 1)[1]
    shoot(page, "school-claim-confirmed")


def test_parent_consents_through_the_link_on_a_phone(
        browser: Browser, stack: Any, world: dict[str, Any], sinks: Any) -> None:
    guardian = world["guardians"][0]

    def link() -> str | None:
        for mail in sinks.smtp.to(guardian):
            found = CONSENT_URL.search(mail.text)
            if found:
                return found.group(1)
        return None

    url = wait_for(link, timeout=60, message="the consent message reached the guardian")
    as_json = requests.get(url, headers={"Accept": "application/json"}, timeout=30)
    assert as_json.headers["Content-Type"].startswith("application/json"), as_json.text
    page = new_page(browser, stack.url, viewport=PHONE, is_mobile=True, has_touch=True)
    try:
        page.goto(url)
        expect(page.locator("h1")).to_contain_text("星空探秘")
        expect(page.locator("dl.trip")).to_contain_text("上海")
        accessible(page)
        shoot(page, "parent-consent-phone")
        page.get_by_role("button", name="同意").first.click()
        expect(page.get_by_role("status")).to_contain_text("您已同意")
        shoot(page, "parent-consent-thanks-phone")
        page.goto(url)
        expect(page.get_by_role("status")).to_contain_text("此链接已回复")
    finally:
        page.context.close()


def test_school_reminds_the_parents_who_have_not_answered(
        browser: Browser, stack: Any, world: dict[str, Any], desk: dict[str, Page],
        sinks: Any) -> None:
    page = page_of(desk, browser, stack, world["people"]["school"])
    page.goto(f"/school/claims/{state['claim_id']}")
    expect(page.get_by_role("main")).to_contain_text("同意 1")
    page.get_by_role("button", name="提醒尚未回复的家长").click()
    expect(page.get_by_role("status")).to_contain_text("已向 5 名学生的家长发送提醒")
    accessible(page)
    shoot(page, "school-consent-reminder")
    wait_for(lambda: [m for m in sinks.smtp.to(world["guardians"][1]) if "请回复" in m.subject],
             timeout=60, message="the reminder reached a guardian who had not answered")
    venue = page_of(desk, browser, stack, world["people"]["venue"])
    venue.goto(f"/venue/sessions/{state['session_id']}")
    expect(venue.get_by_role("table")).to_contain_text("同意 1 · 不同意 0 · 未回复 5")
    accessible(venue)
    shoot(venue, "venue-session-consents")


def test_finance_funds_the_terms_budget(browser: Browser, stack: Any, world: dict[str, Any],
                                        desk: dict[str, Page]) -> None:
    finance = page_of(desk, browser, stack, world["people"]["finance"])
    finance.goto(f"/finance/?term={world['term']}")
    finance.get_by_label("金额（元）").fill("５,000.00")  # a full-width digit, as typed
    finance.get_by_label("摘要").fill("区财政拨款")
    finance.get_by_role("button", name="记账").click()
    expect(finance.get_by_role("status")).to_contain_text("¥5,000.00")
    expect(finance.get_by_role("table")).to_contain_text("¥5,000.00")
    accessible(finance)
    shoot(finance, "finance-budgets")


def test_a_tutor_visit_is_booked_delivered_and_confirmed(
        browser: Browser, stack: Any, world: dict[str, Any], desk: dict[str, Page]) -> None:
    venue = page_of(desk, browser, stack, world["people"]["venue"])
    venue.goto("/venue/tutors")
    venue.get_by_label("姓名").fill("张博士")
    venue.get_by_label("级别").select_option("senior")
    venue.get_by_label("科目").fill("天文，物理")
    until = datetime.now(SHANGHAI).date() + timedelta(days=365)
    venue.get_by_label("审核有效期至").fill(until.isoformat())
    venue.get_by_role("button", name="登记").click()
    expect(venue.get_by_role("status")).to_contain_text("辅导员已登记")
    accessible(venue)
    school = page_of(desk, browser, stack, world["people"]["school"])
    school.goto(f"/school/visits?venue={world['venue']['venue_id']}")
    school.get_by_label(named("辅导员")).select_option(label="张博士 · 天文、物理")
    school.get_by_label("日期").fill(datetime.now(SHANGHAI).date().isoformat())
    school.get_by_label("小时").fill("2")
    school.get_by_label(named("学生")).fill("45")
    school.get_by_role("button", name="预约到校").click()
    expect(school.get_by_role("status")).to_contain_text("已预约到校")
    venue.goto("/venue/visits")
    venue.get_by_role("button", name="标记已到校").first.click()
    expect(venue.get_by_role("row").filter(has_text="张博士").first).to_contain_text("已到校")
    shoot(venue, "venue-visits")
    school.goto("/school/visits")
    school.get_by_role("button", name="确认已到校").first.click()
    expect(school.get_by_role("row").filter(has_text="张博士").first).to_contain_text("已确认")
    accessible(school)
    shoot(school, "school-visits")


def test_finance_approves_the_subsidy_and_a_second_person_the_payout_run(
        browser: Browser, stack: Any, world: dict[str, Any], desk: dict[str, Page],
        api: Any) -> None:
    term = world["term"]
    finance = page_of(desk, browser, stack, world["people"]["finance"])

    def awaiting() -> bool:
        finance.goto(f"/finance/accruals?term={term}")
        return finance.get_by_role("row").filter(has_text="张博士").count() > 0

    try:
        wait_for(awaiting, timeout=60, interval=1, message="the visit's accrual awaits approval")
    except AssertionError:
        visits = api.as_("school", world["school"]["school_id"]).get("/v1/tutor-visits").json()
        accruals = api.as_("finance", world["district"]["district_id"]).get(
            "/v1/funding/accruals", params={"term": term}).json()
        raise AssertionError(f"no accrual for the district; visits {visits}, "
                             f"accruals {accruals}") from None
    accessible(finance)
    shoot(finance, "finance-accruals")
    finance.get_by_role("checkbox").first.check()
    finance.get_by_role("button", name=re.compile("审批所选")).click()
    expect(finance.locator("#accruals")).to_contain_text("已审批")
    finance.goto("/finance/payouts")
    finance.get_by_label("学期").fill(term)
    finance.get_by_role("button", name="创建批次").click()
    expect(finance.locator("h1")).to_contain_text("付款批次")
    run_url = finance.url
    expect(finance.get_by_role("main")).to_contain_text("须由另一位财务人员审批")
    expect(finance.locator("dl.facts")).to_contain_text("陈会计")  # a name, not a user id
    checker = page_of(desk, browser, stack, world["people"]["checker"])
    checker.goto(run_url)
    checker.get_by_role("button", name="审批通过").click()
    expect(checker.get_by_role("status")).to_contain_text("已审批")
    expect(checker.locator("dl.facts")).to_contain_text("周出纳")
    checker.get_by_role("button", name="导出银行付款文件").click()
    expect(checker.get_by_role("status")).to_contain_text("已导出")
    with checker.expect_download() as download:
        checker.get_by_role("link", name="下载银行付款文件").click()
    assert download.value.suggested_filename
    accessible(checker)
    shoot(checker, "finance-payout-exported")


def test_a_form_without_its_csrf_token_is_refused(
        browser: Browser, stack: Any, world: dict[str, Any], desk: dict[str, Page]) -> None:
    page = page_of(desk, browser, stack, world["people"]["venue"])
    answer = page.request.post("/venue/tutors", form={"name": "冒名", "level": "junior",
                                                      "subjects": "x",
                                                      "certified_until": "2030-01-01"})
    assert answer.status == 403
    assert "表单已过期" in answer.text()
    page.goto("/venue/tutors")
    expect(page.get_by_role("table")).not_to_contain_text("冒名")


def test_a_school_person_cannot_open_another_schools_claim(
        browser: Browser, stack: Any, world: dict[str, Any], desk: dict[str, Page]) -> None:
    page = page_of(desk, browser, stack, world["people"]["other_school"])
    response = page.goto(f"/school/claims/{state['claim_id']}")
    assert response is not None and response.status == 404
    expect(page.get_by_role("main")).to_contain_text("本校没有这个预约")
    expect(page.get_by_role("main")).not_to_contain_text("五年级(1)班")


def test_venue_records_attendance_once_the_session_started(
        browser: Browser, stack: Any, world: dict[str, Any], desk: dict[str, Page]) -> None:
    page = page_of(desk, browser, stack, world["people"]["venue"])
    wait_for(lambda: datetime.now(UTC) >= state["starts_at"], timeout=LEAD_S + 120,
             interval=1, message="the session has started")
    page.goto(f"/venue/sessions/{state['session_id']}")
    page.get_by_label("到场学生").first.fill("5")
    page.get_by_role("button", name="登记到场人数").click()
    expect(page.get_by_role("status")).to_contain_text("到场人数已登记")
    accessible(page)
    shoot(page, "venue-attendance")


def test_the_district_dashboard_draws_the_priority_share_with_its_table(
        browser: Browser, stack: Any, world: dict[str, Any], desk: dict[str, Page]) -> None:
    page = page_of(desk, browser, stack, world["people"]["finance"])
    page.goto(f"/admin/district?term={world['term']}")
    expect(page.locator("#chart-priority[data-chart-drawn] canvas")).to_have_count(1)
    table = page.locator("#table-priority")
    expect(table).to_contain_text("在校生占比")
    expect(table).to_contain_text("座位占比")
    expect(page.locator("#priority-verdict")).not_to_be_empty()
    expect(page.locator("#table-coverage")).to_contain_text(world["school"]["name"])
    accessible(page)
    shoot(page, "district-dashboard")
