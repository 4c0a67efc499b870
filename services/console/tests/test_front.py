"""One origin: /v1 goes to the gateway, pages to the console; a consent link is negotiated."""

from __future__ import annotations

from typing import Any

from services.console.front import Front, for_console

BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


def env(path: str, accept: str = "", method: str = "GET") -> dict[str, Any]:
    return {"PATH_INFO": path, "HTTP_ACCEPT": accept, "REQUEST_METHOD": method}


def test_api_paths_go_to_the_gateway_and_pages_to_the_console() -> None:
    assert not for_console(env("/v1/sessions", BROWSER))
    assert not for_console(env("/healthz"))
    assert for_console(env("/"))
    assert for_console(env("/school/claims"))
    assert for_console(env("/static/console.css"))


def test_a_consent_link_opened_in_a_browser_is_the_console_page() -> None:
    assert for_console(env("/v1/consents/abc.def", BROWSER))
    assert not for_console(env("/v1/consents/abc.def", "application/json"))
    assert not for_console(env("/v1/consents/abc.def", "*/*"))  # curl, requests
    assert not for_console(env("/v1/consents/abc.def", ""))
    assert not for_console(env("/v1/consents/abc.def", BROWSER, "POST"))  # JSON answers
    assert not for_console(env("/v1/consents/abc.def/extra", BROWSER))
    assert for_console(env("/v1/surveys/abc.def", BROWSER))
    assert not for_console(env("/v1/surveys/teacher/clm_1", BROWSER))  # the school's API


def test_front_dispatches_to_the_chosen_app() -> None:
    seen = []

    def app(name: str) -> Any:
        def run(environ: dict[str, Any], start_response: Any) -> list[bytes]:
            seen.append(name)
            return [b""]
        return run

    front = Front(app("console"), app("gateway"))
    front(env("/v1/claims"), None)
    front(env("/login"), None)
    assert seen == ["gateway", "console"]
