"""Raw answers: a download's name comes from path input, so its headers must be sendable
whatever that input holds (gunicorn refuses non-Latin-1 header values after the app
returned: a bare HTML 500 outside the problem handler)."""

from __future__ import annotations

import re
import uuid
from urllib.parse import unquote

import pymongo
import pytest
from werkzeug.test import Client
from werkzeug.wrappers import Response

from services.gateway.app import Gateway
from services.gateway.downloads import attachment, download
from services.gateway.routing import Call, Route
from services.gateway.tests.fakes import FakeRpc
from services.kit.config import Settings

SECRET = "unit-test-secret-" + "x" * 32
SENDABLE = re.compile(r"[ \t\x21-\x7e\x80-\xff]*")  # gunicorn's HEADER_VALUE_RE
NAMES = ["monitoring-\U0003c870=-2026-autumn-summary.csv", "区-2026.xlsx",
         'a"b\\c%d\r\nX-Evil: 1.csv', "\ud8cd.csv", ""]


@pytest.mark.parametrize("name", NAMES)
def test_the_disposition_of_any_name_is_a_sendable_header(name):
    value = attachment(name)
    assert SENDABLE.fullmatch(value)
    fallback = re.match(r'attachment; filename="([^"]*)"; ', value)
    assert fallback and fallback.group(1)


def test_the_exact_name_travels_percent_encoded():
    value = attachment("监测-2026.csv")
    assert unquote(value.split("filename*=UTF-8''")[1]) == "监测-2026.csv"


def by_path(call: Call) -> Response:
    return download({"filename": f"report-{call.path['name']}.csv",
                     "content_type": "text/csv; charset=utf-8", "text": "a,b\n"})


def bad_header(call: Call) -> Response:
    return Response("x", headers={"X-Name": call.path["name"]})


ROUTES = [Route("GET", "/v1/files/<name>", by_path, None, raw_response=True),
          Route("GET", "/v1/raw/<name>", bad_header, None, raw_response=True)]


@pytest.fixture()
def client(mongo_url):
    mongo = pymongo.MongoClient(mongo_url, tz_aware=True)
    settings = Settings(jwt_secret=SECRET, db_prefix=f"unit_{uuid.uuid4().hex[:10]}")
    yield Client(Gateway(settings, rpc=FakeRpc(), mongo=mongo, routes=ROUTES))
    mongo.drop_database(settings.database("gateway"))
    mongo.close()


def test_a_download_named_from_non_latin1_path_input_is_sendable(client):
    response = client.get("/v1/files/%F0%BC%A1%B0%3D")
    assert response.status_code == 200
    assert all(SENDABLE.fullmatch(v) for _, v in response.headers.items())


def test_a_raw_answer_with_an_unsendable_header_is_the_gateways_problem(client):
    response = client.get("/v1/raw/%E5%8C%BA")
    assert response.status_code == 500
    assert response.mimetype == "application/problem+json"
    assert all(SENDABLE.fullmatch(v) for _, v in response.headers.items())
