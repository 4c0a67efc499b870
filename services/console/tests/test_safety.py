"""Sessions and safety: CSRF on every form, strict headers, cookie flags, logout."""

from __future__ import annotations

from services.console.tests.conftest import csrf_of, sign_in_as


def test_pages_carry_a_csp_without_inline_script(client, fake) -> None:
    answer = client.get("/login")
    csp = answer.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "frame-ancestors 'none'" in csp
    assert answer.headers["X-Frame-Options"] == "DENY"
    assert answer.headers["Referrer-Policy"] == "no-referrer"


def test_a_post_without_its_csrf_token_is_refused_before_the_api_is_called(client, fake) -> None:
    csrf_of(client)
    answer = client.post("/login", data={"identifier": "a@b.cn", "password": "x"})
    assert answer.status_code == 403
    wrong = client.post("/login", data={"identifier": "a@b.cn", "password": "x",
                                        "csrf_token": "forged"})
    assert wrong.status_code == 403
    not_ascii = client.post("/login", data={"identifier": "a@b.cn", "password": "x",
                                            "csrf_token": "令牌"})
    assert not_ascii.status_code == 403  # refused, not a 500 from compare_digest
    assert not fake.calls


def test_signing_in_sets_an_httponly_samesite_cookie_holding_no_readable_token(
        client, fake) -> None:
    token = csrf_of(client)
    fake.on("POST", "/v1/auth/login", (200, {"access_token": "access-1",
                                             "refresh_token": "rt_one", "role": "school",
                                             "org_id": "sch_1"}))
    fake.on("GET", "/v1/me", (200, {"user_id": "usr_1", "display_name": "李老师",
                                     "acting": {"org_id": "sch_1", "role": "school"},
                                     "memberships": []}))
    fake.on("GET", "/v1/schools/sch_1", (200, {"name": "实验小学"}))
    answer = client.post("/login?next=https://evil.example/x", data={
        "identifier": "li@example.cn", "password": "pw", "csrf_token": token})
    assert answer.status_code == 303
    assert answer.headers["Location"] == "/school/"  # never an open redirect
    cookie = answer.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert fake.sent("GET", "/v1/me")[0]["headers"]["Authorization"] == "Bearer access-1"


def test_a_wrong_password_says_so_and_keeps_the_identifier(client, fake) -> None:
    token = csrf_of(client)
    fake.on("POST", "/v1/auth/login", (401, {"title": "Unauthorized", "status": 401}))
    answer = client.post("/login", data={"identifier": "li@example.cn", "password": "pw",
                                         "csrf_token": token})
    page = answer.get_data(as_text=True)
    assert answer.status_code == 422
    assert "邮箱、手机号或密码错误" in page and 'value="li@example.cn"' in page
    assert 'value="pw"' not in page


def test_logout_revokes_the_sign_in_and_forgets_it(client, fake) -> None:
    token = sign_in_as(client, fake, "school", "sch_1")
    fake.on("POST", "/v1/auth/logout", (200, {"ok": True}))
    answer = client.post("/logout", data={"csrf_token": token})
    assert answer.status_code == 303
    assert fake.sent("POST", "/v1/auth/logout")[0]["json"] == {"refresh_token": "rt_one"}
    assert client.get("/school/").status_code == 302  # back to the sign-in page


def test_an_expired_access_token_is_refreshed_once_and_the_call_retried(client, fake) -> None:
    sign_in_as(client, fake, "school", "sch_1")
    fake.on("GET", "/v1/claims", (401, {"status": 401, "title": "Unauthorized"}),
            (200, {"items": [], "next_cursor": None}))
    fake.on("POST", "/v1/auth/refresh", (200, {"access_token": "access-2",
                                               "refresh_token": "rt_two"}))
    answer = client.get("/school/claims")
    assert answer.status_code == 200
    retried = fake.sent("GET", "/v1/claims")
    assert [c["headers"]["Authorization"] for c in retried] == ["Bearer access-1",
                                                                 "Bearer access-2"]
    assert fake.sent("POST", "/v1/auth/refresh")[0]["json"] == {"refresh_token": "rt_one"}
    fake.on("GET", "/v1/claims", (200, {"items": [], "next_cursor": None}))
    client.get("/school/claims")
    assert fake.sent("GET", "/v1/claims")[-1]["headers"]["Authorization"] == "Bearer access-2"


def test_a_refused_refresh_signs_the_person_out(client, fake) -> None:
    sign_in_as(client, fake, "school", "sch_1")
    fake.on("GET", "/v1/claims", (401, {"status": 401, "title": "Unauthorized"}))
    fake.on("POST", "/v1/auth/refresh", (401, {"status": 401, "title": "Unauthorized"}))
    answer = client.get("/school/claims")
    assert answer.status_code == 302 and "/login" in answer.headers["Location"]
    assert len(fake.sent("POST", "/v1/auth/refresh")) == 1  # once, never a loop


def test_the_organisation_switcher_asks_identity_for_a_new_pair(client, fake) -> None:
    token = sign_in_as(client, fake, "school", "sch_1")
    fake.on("POST", "/v1/auth/switch", (200, {"access_token": "access-v",
                                              "refresh_token": "rt_v"}))
    fake.on("GET", "/v1/me", (200, {"user_id": "usr_1", "display_name": "李老师",
                                     "acting": {"org_id": "ven_1", "role": "venue"},
                                     "memberships": []}))
    answer = client.post("/switch", data={"membership": "ven_1|venue", "csrf_token": token})
    assert answer.status_code == 303 and answer.headers["Location"] == "/venue/"
    assert fake.sent("POST", "/v1/auth/switch")[0]["json"] == {"org_id": "ven_1",
                                                               "role": "venue"}


def test_english_is_one_click_away_and_sticks(client, fake) -> None:
    token = csrf_of(client)
    answer = client.post("/language", data={"lang": "en", "next": "/login",
                                            "csrf_token": token})
    assert answer.status_code == 303 and "kepu_lang=en" in answer.headers["Set-Cookie"]
    page = client.get("/login").get_data(as_text=True)
    assert "Sign in to Kepu" in page and 'lang="en"' in page


def test_the_browsers_address_is_passed_on_after_the_proxies_it_came_through():
    from werkzeug.test import EnvironBuilder
    from werkzeug.wrappers import Request

    from services.console.app import forwarded_for

    behind_ingress = Request(EnvironBuilder(headers={"X-Forwarded-For": "198.51.100.7"},
                                            environ_base={"REMOTE_ADDR": "10.0.3.3"}).get_environ())
    assert forwarded_for(behind_ingress) == "198.51.100.7, 10.0.3.3"
    direct = Request(EnvironBuilder(environ_base={"REMOTE_ADDR": "203.0.113.9"}).get_environ())
    assert forwarded_for(direct) == "203.0.113.9"
