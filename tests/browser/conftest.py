"""Browser journeys: a real headless Chromium (Debian's, driven by Playwright) against the
running test stack, whose gateway process serves the console at `/` (deploy/stack.py).

People sign in with passwords: they are provisioned through identity's operator call
(`identity.provision`, as `make run` does for its demo logins), each with one membership.
Screenshots go to var/screens/ (the README shows a few).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from deploy.stack import ROOT
from services.kit.actor import Actor, actor_key, sign

SCREENS = Path(os.environ.get("KEPU_SCREENS_DIR", ROOT / "var" / "screens"))
CHROMIUM = os.environ.get("KEPU_CHROMIUM", "/usr/bin/chromium")
PASSWORD = "kepu-console-2026!"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 860}
SERIOUS = ("serious", "critical")


@dataclass
class Person:
    identifier: str
    role: str
    org_id: str | None
    name: str
    password: str = PASSWORD


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="session")
def provision(stack: Any, rpc: Any) -> Any:
    """Make a person with a password and one membership (identity's operator call)."""
    key = actor_key(os.environ["KEPU_JWT_SECRET"])

    def make(role: str, org_id: str | None, name: str) -> Person:
        person = Person(f"{role}.{uuid.uuid4().hex[:8]}@example.cn", role, org_id, name)
        rpc.identity.provision({"identifier": person.identifier, "password": person.password,
                                "display_name": name, "role": role, "org_id": org_id,
                                "manager": True}, actor=sign(Actor("operator", "admin"), key))
        return person

    return make


def new_page(browser: Browser, url: str, viewport: dict[str, int] = DESKTOP,
             **options: Any) -> Page:
    context = browser.new_context(base_url=url, viewport=viewport, locale="zh-CN",
                                  timezone_id="Asia/Shanghai", **options)
    context.set_default_timeout(30_000)
    return context.new_page()


def sign_in(page: Page, person: Person) -> None:
    page.goto("/login")
    page.get_by_label("电子邮箱或手机号").fill(person.identifier)
    page.get_by_label("密码").fill(person.password)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url(lambda url: "/login" not in url)


def shoot(page: Page, name: str, full_page: bool = True) -> Path:
    SCREENS.mkdir(parents=True, exist_ok=True)
    path = SCREENS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def serious_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core (vendored, same origin, so the CSP lets it in) on the page as it stands."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(url="/static/vendor/axe.min.js")
    result = page.evaluate("""async () => {
        const r = await axe.run(document, {resultTypes: ['violations']});
        return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                       nodes: v.nodes.slice(0, 3).map(n => n.target)}));
    }""")
    return [v for v in result if v["impact"] in SERIOUS]


def accessible(page: Page) -> None:
    found = serious_violations(page)
    assert not found, f"axe-core on {page.url}: {found}"
