"""Real people where it matters: maker-checker with two finance officers who signed in,
a district reading its schools' audit trail, and the operator's tools (`kepu token`,
`kepu user create-admin`)."""

from __future__ import annotations

import subprocess
import sys
import uuid
from datetime import date
from pathlib import Path

import jwt
import pytest

from services.kit.config import Settings
from services.kit.event_publisher import Publisher
from services.kit.outbox import event
from tests.support import Api, password, problem, wait_for

pytestmark = pytest.mark.stack
TERM = "2026-autumn"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def district(api: Api) -> dict:
    return api.register_district(name=f"测试区-{uuid.uuid4().hex[:6]}")


def kepu(settings_env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "services.kit.cli", *args], cwd=ROOT,
                          env=settings_env, capture_output=True, text=True, timeout=60)


def test_a_payout_run_needs_a_second_real_finance_officer(api, district, stack,
                                                          settings_env):
    dis = district["district_id"]
    maker = api.person("finance", dis, manager=False, name="maker")
    checker = api.person("finance", dis, manager=False, name="checker")
    assert maker.user_id != checker.user_id
    assert maker.post("/v1/funding/rate-cards", json={
        "effective_from": "2026-09-01", "rates": {"senior": 10_000}}).status_code == 201
    assert maker.post("/v1/funding/budgets/fund", json={
        "term": TERM, "source": "fiscal_subsidy", "amount_fen": 1_000_000,
        "memo": "区财政拨款"}).status_code == 201
    visit_id = f"vis_{uuid.uuid4().hex[:16]}"
    publisher = Publisher(Settings.from_env(settings_env))
    try:
        publisher.publish(event("booking.tutor_visit_confirmed", {
            "visit_id": visit_id, "tutor_id": "tut_real", "tutor_name": "李老师",
            "tutor_level": "senior", "venue_id": "ven_x", "school_id": "sch_x",
            "district": dis, "date": date(2026, 10, 15), "term": TERM, "hours": 2.0,
            "students": 40, "subject": "天文"}))
    finally:
        publisher.close()
    wait_for(lambda: maker.get(f"/v1/funding/accruals/{visit_id}").json().get("status")
             == "awaiting_approval", message="the accrual")
    assert checker.post("/v1/funding/accruals/approve",
                        json={"term": TERM}).json()["count"] == 1
    run = maker.post("/v1/funding/payout-runs", json={"term": TERM, "note": "十二月"})
    assert run.status_code == 201, run.text
    run_id = run.json()["run_id"]
    own = problem(maker.post(f"/v1/funding/payout-runs/{run_id}/approve"), 403)
    assert own["code"] == "maker-checker"
    approved = checker.post(f"/v1/funding/payout-runs/{run_id}/approve")
    assert approved.status_code == 200 and approved.json()["state"] == "approved"


def test_a_district_reads_its_schools_audit_trail_and_no_one_elses(api, district):
    school = api.register_school(name="区内小学", district=district["name"])["school_id"]
    elsewhere = api.register_school(name="区外小学", district="别的区")["school_id"]
    officer = api.person("district", district["district_id"], manager=False, name="officer")
    staff = api.person("school", school, name="coordinator")

    def seen() -> list:
        staff.post("/v1/auth/switch", json={"org_id": school, "role": "school"})
        return officer.get("/v1/audit", params={"org_id": school}).json()["items"]

    rows = wait_for(seen, message="the school's records in its district's audit trail")
    assert all(r["org_id"] == school for r in rows)
    problem(officer.get("/v1/audit", params={"org_id": elsewhere}), 403)


def test_kepu_token_is_capped_and_audited(api, stack, settings_env):
    refused = kepu(settings_env, "token", "--role", "admin", "--ttl", "25h")
    assert refused.returncode == 2 and "24 hours" in refused.stderr
    minted = kepu(settings_env, "token", "--role", "school", "--org", "sch_ops", "--ttl", "1h")
    assert minted.returncode == 0, minted.stderr
    token = minted.stdout.strip()
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 3600 and claims["aud"] == "kepu-api"
    rows = api.admin.get("/v1/audit", params={"action": "token_minted",
                                              "resource_id": claims["jti"]}).json()["items"]
    assert len(rows) == 1 and "school" in rows[0]["detail"]


def test_create_admin_bootstraps_once(api, stack, settings_env, tmp_path):
    identifier = f"ops-{uuid.uuid4().hex[:6]}@kepu.test"
    secret_file = tmp_path / "password"
    secret_file.write_text(password())
    first = kepu(settings_env, "user", "create-admin", "--identifier", identifier,
                 "--password-file", str(secret_file))
    assert first.returncode == 0 and "created" in first.stdout, first.stderr
    second = kepu(settings_env, "user", "create-admin", "--identifier", identifier,
                  "--password-file", str(secret_file))
    assert second.returncode == 0 and "already exists" in second.stdout, second.stderr
    admin = api.login(identifier, secret_file.read_text())
    assert admin.pair["role"] == "admin"
    assert admin.get("/v1/me").json()["acting"] == {"org_id": None, "role": "admin",
                                                    "org_name": None}
    secret_file.write_text("short")
    weak = kepu(settings_env, "user", "create-admin", "--identifier", "x@kepu.test",
                "--password-file", str(secret_file))
    assert weak.returncode == 1 and "password" in weak.stderr


def test_demo_logins_are_made_once_kept_private_and_sign_in(api, district, settings_env,
                                                            tmp_path):
    from types import SimpleNamespace

    from deploy import demo_logins

    venue = api.register_venue(name="演示科技馆")
    school = api.register_school(name="演示小学")
    demo = SimpleNamespace(district_id=district["district_id"], venues={"museum": venue},
                           schools={"shuyuan": school})
    settings = Settings.from_env(settings_env)
    first = demo_logins.ensure(demo, settings, tmp_path)
    again = demo_logins.ensure(demo, settings, tmp_path)
    assert [x.password for x in again] == [x.password for x in first]
    assert (tmp_path / demo_logins.FILE).stat().st_mode & 0o777 == 0o600
    for login in first:
        client = api.login(login.identifier, login.password)
        assert (client.pair["role"], client.pair["org_id"]) == (login.role, login.org_id)
    shown = "\n".join(demo_logins.lines(first, api.url, False, tmp_path))
    assert all(x.password not in shown for x in first)
    (tmp_path / demo_logins.FILE).unlink()  # the file lost, the database kept
    fresh = demo_logins.ensure(demo, settings, tmp_path)
    assert fresh[0].password != first[0].password
    assert api.login(fresh[0].identifier, fresh[0].password).pair["role"] == "admin"
