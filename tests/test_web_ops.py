"""The operators' console on the web: off unless switched on, only from allowed networks,
enrolment from the one-time link, login by password then authenticator code, its own cookie,
sessions that end (logout, idle, disabled), and a dashboard each role sees its part of."""
import re
from datetime import timedelta

import pyotp
import pytest

from services import clock, operators
from tests.conftest import Browserish, fresh_app, move_clock, text

PASSWORD = "quiet lantern orbit 42 maple"
CHECKED = {"documents": ["business-registration", "representative-id"]}


def enrol(web, link_token) -> pyotp.TOTP:
    """Enrol through the page; returns the authenticator the page set up."""
    shown = web.get(f"/ops/enrol/{link_token}")
    key = re.search(r'class="key" lang="en">([A-Z2-7 ]+)<', shown.get_data(as_text=True))
    app_totp = pyotp.TOTP(key.group(1).replace(" ", ""))
    done = web.post(f"/ops/enrol/{link_token}",
                    {"password": PASSWORD, "code": app_totp.at(clock.timestamp())})
    assert done.request.path == "/ops/login", text(done)
    return app_totp


def log_in(web, name, app_totp):
    move_clock(seconds=30)                      # each code is accepted once
    step = web.post("/ops/login", {"name": name, "password": PASSWORD})
    assert step.request.path == "/ops/login/code", text(step)
    return web.post("/ops/login/code", {"code": app_totp.at(clock.timestamp())})


def operator_with_login(console, name="kim.ra", role="ra-officer"):
    web = Browserish(console.test_client())
    _, link = operators.add_operator(name, role, "test")
    app_totp = enrol(web, link.rsplit("/", 1)[1])
    return web, app_totp


def test_the_console_is_off_unless_switched_on(app):
    assert app.test_client().get("/ops/login").status_code == 404


@pytest.mark.parametrize("allow, status", [("10.0.0.0/8", 403), ("10.0.0.0/8, 127.0.0.0/8", 200)])
def test_only_allowed_networks_reach_the_console(tmp_path, ca_template, allow, status):
    application = fresh_app(tmp_path, ca_template, CERTCENTER_OPS="1", CERTCENTER_OPS_ALLOW=allow)
    assert application.test_client().get("/ops/login").status_code == status


def test_enrol_log_in_see_the_dashboard_and_log_out(console):
    web = Browserish(console.test_client())
    _, link = operators.add_operator("kim.ra", "ra-officer", "test")
    token = link.rsplit("/", 1)[1]
    page = web.get(f"/ops/enrol/{token}")
    assert "kim.ra" in text(page) and "<svg" in page.get_data(as_text=True)
    weak = web.post(f"/ops/enrol/{token}", {"password": "password1234", "code": "123456"})
    assert weak.status_code == 400 and "너무 쉽게 추측할 수 있는 비밀번호입니다" in text(weak)
    app_totp = enrol(web, token)
    assert web.get(f"/ops/enrol/{token}").status_code == 404       # the link is used up

    wrong = web.post("/ops/login", {"name": "kim.ra", "password": "not my password at all"})
    assert wrong.status_code == 400 and "이름 또는 비밀번호가 맞지 않습니다" in text(wrong)
    done = log_in(web, "kim.ra", app_totp)
    assert done.request.path == "/ops/", text(done)
    assert "승인을 기다리는 사업자 인증서 신청 0" in text(done)
    cookie = web.client.get_cookie("cc_ops", path="/ops")
    assert cookie is not None and cookie.path == "/ops" and cookie.http_only and cookie.secure
    assert web.client.get_cookie("cc_ops", path="/") is None

    out = web.post("/ops/logout", {})
    assert out.request.path == "/ops/login" and "로그아웃했습니다" in text(out)
    assert web.get("/ops/", follow_redirects=True).request.path == "/ops/login"


def test_a_session_ends_when_the_operator_is_disabled_or_idle(console):
    web, app_totp = operator_with_login(console)
    assert log_in(web, "kim.ra", app_totp).request.path == "/ops/"
    move_clock(minutes=14)
    assert web.get("/ops/").status_code == 200                     # still in use
    move_clock(minutes=15, seconds=1)
    ended = web.get("/ops/", follow_redirects=True)
    assert ended.request.path == "/ops/login" and "세션이 끝났습니다" in text(ended)

    assert log_in(web, "kim.ra", app_totp).request.path == "/ops/"
    result = console.test_cli_runner().invoke(args=["operators", "disable", "kim.ra"])
    assert result.exit_code == 0, result.output
    assert web.get("/ops/", follow_redirects=True).request.path == "/ops/login"


def test_a_forged_or_pending_cookie_is_not_a_session(console):
    web, _app_totp = operator_with_login(console)
    web.post("/ops/login", {"name": "kim.ra", "password": PASSWORD})   # password only
    assert web.get("/ops/", follow_redirects=True).request.path == "/ops/login"
    web.client.set_cookie("cc_ops", "eyJpZCI6MX0.forged", path="/ops")
    assert web.get("/ops/", follow_redirects=True).request.path == "/ops/login"


@pytest.mark.parametrize("role, sees_counts", [("support", True), ("ra-officer", True),
                                              ("auditor", True), ("admin", False)])
def test_each_role_sees_its_part_of_the_dashboard(console, role, sees_counts):
    web, app_totp = operator_with_login(console, "op." + role, role)
    page = text(log_in(web, "op." + role, app_totp))
    assert "인증기관" in page and "OCSP" in page
    assert ("고객" in page) is sees_counts


def test_demo_seed_prints_the_demo_admins_enrolment_link(console):
    first = console.test_cli_runner().invoke(args=["demo", "seed"])
    link = re.search(r"/ops/enrol/(\S+)", first.output).group(1)
    web = Browserish(console.test_client())
    enrol(web, link)
    again = console.test_cli_runner().invoke(args=["demo", "seed"])
    assert "demo.admin (admin) is enrolled" in again.output


# -- business requests ---------------------------------------------------------------------

def business_request(demo_customer):
    from services import issuance
    return issuance.request_certificate(demo_customer, "business-banking")


@pytest.fixture
def seeded(console):
    result = console.test_cli_runner().invoke(args=["demo", "seed"])
    assert result.exit_code == 0, result.output
    from models import Customer
    return Customer.get(Customer.code == "B0000001")


def issuance_status(asked) -> str:
    from models import CertificateRequest
    return CertificateRequest.get_by_id(asked.id).status


def test_an_officer_approves_a_request_and_the_customer_is_told(console, seeded):
    from tests.conftest import last_sms
    asked = business_request(seeded)
    web, app_totp = operator_with_login(console)
    log_in(web, "kim.ra", app_totp)
    queue = web.get("/ops/requests")
    assert "(주)한빛상사 (B0000001)" in text(queue) and "법인 은행/보험용" in text(queue)
    detail = web.get(f"/ops/requests/{asked.id}")
    assert "123-45-67890" in text(detail) and "김한빛" in text(detail)
    unchecked = web.post(f"/ops/requests/{asked.id}/approve",
                         {"documents": ["business-registration", "made-up"]})
    assert unchecked.status_code == 400 and "대표자 신분증" in text(unchecked)
    assert issuance_status(asked) == "requested"
    done = web.post(f"/ops/requests/{asked.id}/approve",
                    {"documents": [*CHECKED["documents"], "seal-certificate"]})
    assert done.request.path == "/ops/requests" and "승인했습니다" in text(done)
    decided = text(web.get(f"/ops/requests/{asked.id}"))
    assert "확인한 서류" in decided and "법인인감증명서" in decided and "kim.ra" in decided
    assert "승인" in last_sms(seeded)
    from models import AuditEvent
    event = AuditEvent.get(AuditEvent.action == "request.approved")
    assert event.actor == "operator:kim.ra"
    again = web.post(f"/ops/requests/{asked.id}/approve", CHECKED)
    assert again.status_code == 409


def test_a_rejection_needs_a_reason_the_customer_reads(console, seeded):
    from tests.conftest import last_sms
    asked = business_request(seeded)
    web, app_totp = operator_with_login(console)
    log_in(web, "kim.ra", app_totp)
    web.get(f"/ops/requests/{asked.id}")
    missing = web.post(f"/ops/requests/{asked.id}/reject", {"reason": ""})
    assert missing.status_code == 400 and "반려 사유를 입력해 주세요" in text(missing)
    done = web.post(f"/ops/requests/{asked.id}/reject", {"reason": "사업자등록증 사본이 흐립니다"})
    assert done.request.path == "/ops/requests"
    assert "사업자등록증 사본이 흐립니다" in last_sms(seeded)
    assert web.get("/ops/requests/99999999999999999999999").status_code == 404
    assert web.get("/ops/requests/424242").status_code == 404


@pytest.mark.parametrize("role", ["support", "auditor", "admin"])
def test_only_officers_decide_requests(console, seeded, role):
    asked = business_request(seeded)
    web, app_totp = operator_with_login(console, "op." + role, role)
    log_in(web, "op." + role, app_totp)
    detail = web.get(f"/ops/requests/{asked.id}")
    assert detail.status_code == (403 if role == "admin" else 200)
    assert "신청 승인" not in text(detail)
    for action, data in (("approve", CHECKED), ("reject", {"reason": "no"})):
        refused = web.post(f"/ops/requests/{asked.id}/{action}", data)
        assert refused.status_code == 403, (role, action)
    from models import CertificateRequest
    assert CertificateRequest.get_by_id(asked.id).status == "requested"


# -- search, customers, certificates, status changes on a customer's behalf -------------------

@pytest.fixture
def issued(console, seeded):
    from models import Customer
    from services import issuance
    person = Customer.get(Customer.code == "P0000001")
    return issuance.issue_certificate(person, "personal-banking", idn="9001011234567",
                                      actor="test", password="Blue!sky42x",
                                      offer_downloads=False).certificate


def logged_in(console, role="ra-officer", name=None):
    name = name or "op." + role
    web, app_totp = operator_with_login(console, name, role)
    log_in(web, name, app_totp)
    return web


@pytest.mark.parametrize("query", ["P0000001", "p0000001", "홍길동", "010-0000-0001",
                                   "900101-1234567", "9001011234567"])
def test_search_finds_a_customer_by_what_an_operator_has(console, issued, query):
    found = logged_in(console).get(f"/ops/search?q={query}")
    assert "홍길동 (P0000001)" in text(found), text(found)


def test_search_finds_a_business_and_a_certificate_by_serial_in_any_form(console, issued):
    web = logged_in(console, "support")
    assert "(주)한빛상사 (B0000001)" in text(web.get("/ops/search?q=123-45-67890"))
    serial = issued.serial
    for typed in (serial, serial.upper(), serial.lstrip("0"),
                  ":".join(serial[i:i + 2] for i in range(0, 40, 2))):
        assert serial in text(web.get(f"/ops/search?q={typed}")), typed
    nothing = web.get("/ops/search?q=nobody")
    assert "일치하는 고객이 없습니다" in text(nothing)
    empty = web.get("/ops/search?q=")
    assert empty.status_code == 400


def test_the_customer_and_certificate_pages(console, issued):
    web = logged_in(console, "auditor")
    customer = text(web.get("/ops/customers/P0000001"))
    assert "900101-1******" in customer and issued.serial[-8:] in customer
    page = text(web.get(f"/ops/certificates/{issued.serial}"))
    assert issued.subject in page and "certificate.issue , test" in page
    import hashlib
    digest = hashlib.sha256(bytes(issued.der)).hexdigest().upper()
    assert ":".join(digest[i:i + 2] for i in range(0, 64, 2)) in page
    assert "인증서 폐기" not in page                  # auditors change nothing
    assert web.get(f"/ops/certificates/{issued.serial}/revoke").status_code == 403
    assert web.get("/ops/customers/P9999999").status_code == 404
    assert web.get("/ops/certificates/zz").status_code == 400


def test_an_officer_revokes_on_behalf_and_openssl_ocsp_sees_it(console, issued, tmp_path):
    import subprocess

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509 import ocsp

    from models import AuditEvent, Certificate, Customer
    from services import ca_store, status
    from tests.conftest import last_sms
    web = logged_in(console)
    second = logged_in(console, "ra-officer", "op.second")
    form = web.get(f"/ops/certificates/{issued.serial}/revoke")
    assert "되돌릴 수 없습니다" in text(form)
    missing = web.post(f"/ops/certificates/{issued.serial}/revoke", {"note": "전화 요청"})
    assert missing.status_code == 400
    asked = web.post(f"/ops/certificates/{issued.serial}/revoke",
                     {"reason": "key-compromise", "note": "고객 전화: 휴대폰 분실"})
    assert "두 번째 담당자가 24시간 안에 확인하면 폐기됩니다" in text(asked)
    assert Certificate.get_by_id(issued.id).status == "valid"          # not yet
    own = web.post(f"/ops/certificates/{issued.serial}/revoke", {"reason": "key-compromise"})
    assert own.status_code == 403 and "내 결정은 내가 확인할 수 없습니다" in text(own)
    done = second.post(f"/ops/certificates/{issued.serial}/revoke",
                       {"reason": "key-compromise", "note": "본인 확인함"})
    assert done.request.path == f"/ops/certificates/{issued.serial}", text(done)
    assert "폐기했습니다" in text(done)
    assert Certificate.get_by_id(issued.id).status == "revoked"
    assert "폐기" in last_sms(Customer.get(Customer.code == "P0000001"))
    event = AuditEvent.get((AuditEvent.action == "certificate.revoke")
                           & (AuditEvent.target == issued.serial))
    assert event.actor == "operator:op.second" and "휴대폰 분실" in event.details
    assert AuditEvent.get(AuditEvent.action == "certificate.revoke.asked").actor == \
        "operator:op.ra-officer"

    keys = ca_store.load_ca()
    cert = x509.load_der_x509_certificate(bytes(issued.der))
    request = ocsp.OCSPRequestBuilder().add_certificate(cert, keys.issuing_cert,
                                                        hashes.SHA1()).build()
    (tmp_path / "answer.der").write_bytes(status.ocsp_answer(
        request.public_bytes(serialization.Encoding.DER)).der)
    for name, item in (("root.pem", keys.root_cert), ("issuing.pem", keys.issuing_cert),
                       ("cert.pem", cert)):
        (tmp_path / name).write_bytes(item.public_bytes(serialization.Encoding.PEM))
    run = subprocess.run(["openssl", "ocsp", "-respin", "answer.der", "-issuer", "issuing.pem",
                          "-CAfile", "root.pem", "-cert", "cert.pem"], cwd=tmp_path,
                         capture_output=True, text=True)
    assert "Response verify OK" in run.stderr, run.stderr
    assert "cert.pem: revoked" in run.stdout and "Reason: keyCompromise" in run.stdout, run.stdout


def test_an_officer_suspends_and_resumes_and_support_cannot(console, issued):
    from models import Certificate
    support = logged_in(console, "support")
    assert support.post(f"/ops/certificates/{issued.serial}/suspend", {}).status_code == 403
    web = logged_in(console)
    assert web.post(f"/ops/certificates/{issued.serial}/suspend",
                    {"note": ""}).request.path.endswith(issued.serial)
    assert Certificate.get_by_id(issued.id).status == "suspended"
    resumed = web.post(f"/ops/certificates/{issued.serial}/resume", {"note": "본인 확인"})
    assert "인증서를 다시 쓸 수 있습니다" in text(resumed)
    assert Certificate.get_by_id(issued.id).status == "valid"


# -- every route, every role ----------------------------------------------------------------

def console_routes(console, issued) -> list:
    """(method, url, action) of every console route that needs a session, built with real
    values: a request, the certificate, its customer, another operator."""
    from models import Customer
    from services import issuance
    asked = issuance.request_certificate(Customer.get(Customer.code == "B0000001"),
                                         "business-banking")
    operators.add_operator("other.op", "support", "test")
    values = {"request_id": asked.id, "serial": issued.serial, "code": "P0000001",
              "change": "suspend", "name": "other.op"}
    routes = []
    for rule in console.url_map.iter_rules():
        view = console.view_functions[rule.endpoint]
        if rule.endpoint.startswith("ops.") and hasattr(view, "required_action"):
            url = rule.build({k: v for k, v in values.items() if k in rule.arguments})[1]
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                routes.append((method, url, view.required_action))
    return routes


def test_every_console_route_refuses_every_role_that_may_not_use_it(console, issued):
    routes = console_routes(console, issued)
    assert len(routes) >= 10, routes
    for role in operators.ROLES:
        web = logged_in(console, role)
        for method, url, action in routes:
            if method == "POST" and url.endswith("/logout"):
                continue                                   # would end this walk
            response = (web.get(url) if method == "GET"
                        else web.post(url, {"reason": "r", "note": "", **CHECKED}))
            allowed = action in operators.PERMISSIONS[role]
            assert (response.status_code == 403) is not allowed, (role, method, url,
                                                                   response.status_code)


def test_every_console_page_fits_the_first_round_trip(console, issued):
    """14 KB gzipped, as the customer's pages: full lists (a page of 50 audit events and 50
    notifications) in both languages."""
    import gzip

    from models import Customer
    from services import audit
    from services.notify import notify
    person = Customer.get(Customer.code == "P0000001")
    for number in range(60):
        audit.record("operator:someone.with.a.long.name", "certificate.suspend", issued.serial,
                     note="고객 요청으로 효력정지 " * 3, number=number)
        notify(person, "expiry_reminder", "[CertCenter] %(n)s", n=number)
    pages = [url for method, url, _action in console_routes(console, issued) if method == "GET"]
    pages += ["/ops/search?q=P0000001", f"/ops/search?q={issued.serial}"]
    sizes = {}
    for role in operators.ROLES:
        web = logged_in(console, role)
        for language in ("ko", "en"):
            web.client.set_cookie("lang", language)
            for url in pages:
                response = web.get(url)
                if response.status_code == 200 and response.mimetype == "text/html":
                    sizes[(role, language, url)] = len(gzip.compress(response.get_data(), 9))
    assert len(sizes) >= 4 * 2 * 3, sizes
    assert {page: size for page, size in sizes.items() if size > 14 * 1024} == {}, sizes


# -- the audit trail -----------------------------------------------------------------------

def test_an_auditor_filters_pages_exports_and_verifies_the_trail(console, issued):
    import csv
    import io

    from models import AuditEvent
    from services import audit
    for n in range(60):
        audit.record("test:filler", "test.filler", f"T{n:03d}")
    web = logged_in(console, "auditor")
    first = text(web.get("/ops/audit?actor=test:filler"))
    assert "T059" in first and "T010" in first and "T009" not in first   # 50 newest
    older = web.get(f"/ops/audit?actor=test:filler&before={AuditEvent.get(AuditEvent.target == 'T010').id}")
    assert "T009" in text(older) and "T000" in text(older)
    by_target = text(web.get(f"/ops/audit?target={issued.serial}"))
    assert "certificate.issue" in by_target
    bad = web.get("/ops/audit?since=12/01/2026")
    assert bad.status_code == 400 and "YYYY-MM-DD" in text(bad)

    exported = web.get("/ops/audit.csv?action=test.filler")
    assert exported.mimetype == "text/csv" and "attachment" in exported.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(exported.get_data(as_text=True))))
    assert len(rows) == 60 and rows[0]["target"] == "T000"
    assert rows[0]["hash"] == AuditEvent.get(AuditEvent.target == "T000").hash

    holds = text(web.get("/ops/audit/verify"))
    assert "기록이 온전합니다" in holds
    edited = AuditEvent.get(AuditEvent.target == "T030")
    AuditEvent.update(details='{"edited": true}').where(AuditEvent.id == edited.id).execute()
    broken = text(web.get("/ops/audit/verify"))
    assert f"{edited.id}번 기록부터 온전하지 않습니다" in broken


def test_the_outbox_shows_what_was_not_delivered_and_support_can_retry(console, issued):
    from models import AuditEvent, Notification
    from services import notify
    notify.notify(issued.customer, "expiry_reminder", "[CertCenter] reminder")
    notify.notify(issued.customer, "verification_code", "[CertCenter] code 482915", sealed=True)
    support = logged_in(console, "support")
    waiting = Notification.select().where(Notification.status == "queued").count()
    assert waiting > 0                      # no gateway configured: text messages wait here
    shown = support.get("/ops/outbox")
    assert "P0000001" in text(shown) and "queued" in text(shown)
    assert "verification_code" in text(shown) and "482915" not in shown.get_data(as_text=True)
    retried = support.post("/ops/outbox/retry", {})
    assert retried.request.path == "/ops/outbox" and "다시 보냈습니다" in text(retried)
    assert AuditEvent.get(AuditEvent.action == "outbox.retry").actor == "operator:op.support"
    auditor = logged_in(console, "auditor")
    assert auditor.get("/ops/outbox").status_code == 200
    assert auditor.post("/ops/outbox/retry", {}).status_code == 403



def test_a_business_general_approval_takes_two_officers(console, seeded):
    from models import CertificateRequest
    from services import issuance
    from tests.conftest import last_sms
    asked = issuance.request_certificate(seeded, "business-general")
    first = logged_in(console, "ra-officer", "op.first")
    waiting = first.post(f"/ops/requests/{asked.id}/approve", CHECKED)
    assert "두 번째 담당자가 필요합니다" in text(waiting)
    assert CertificateRequest.get_by_id(asked.id).status == "requested"
    assert "승인" not in last_sms(seeded)
    page = text(first.get(f"/ops/requests/{asked.id}"))
    assert "다른 담당자가 내 승인을 확인해야 합니다" in page and "승인 확인" not in page
    assert first.post(f"/ops/requests/{asked.id}/approve", CHECKED).status_code == 403

    second = logged_in(console, "ra-officer", "op.second")
    assert "op.first 담당자가" in text(second.get(f"/ops/requests/{asked.id}"))
    done = second.post(f"/ops/requests/{asked.id}/approve", CHECKED)
    assert "신청을 승인했습니다" in text(done)
    assert CertificateRequest.get_by_id(asked.id).decided_by == "op.second"
    assert "승인" in last_sms(seeded)


def test_a_first_approval_not_confirmed_in_24_hours_lapses(console, seeded):
    from models import CertificateRequest
    from services import issuance
    asked = issuance.request_certificate(seeded, "business-general")
    first = logged_in(console, "ra-officer", "op.first")
    first.post(f"/ops/requests/{asked.id}/approve", CHECKED)
    move_clock(hours=24, minutes=1)
    second = logged_in(console, "ra-officer", "op.third")         # sessions of a day ago ended
    again = second.post(f"/ops/requests/{asked.id}/approve", CHECKED)
    assert "두 번째 담당자가 필요합니다" in text(again)           # a new first approval
    assert CertificateRequest.get_by_id(asked.id).status == "requested"


def test_support_unlocks_a_stopped_customer_with_a_note_and_they_are_told(console, seeded):
    from models import AuditEvent, Customer
    from services import clock as clock_module
    from tests.conftest import last_sms
    Customer.update(self_service_suspended_at=clock_module.now()).where(
        Customer.code == "B0000001").execute()
    Customer.update(locked_until=clock_module.now() + timedelta(minutes=30)).where(
        Customer.code == "P0000001").execute()                   # a pause counts too
    auditor = logged_in(console, "auditor")
    assert "본인 확인이 멈추거나 잠시 멈춘 고객 2" in text(auditor.get("/ops/"))
    paused = text(auditor.get("/ops/customers/P0000001"))
    assert "본인 확인" in paused and "까지 멈춤" in paused
    assert "잠금 해제" not in text(auditor.get("/ops/customers/B0000001"))
    assert auditor.post("/ops/customers/B0000001/unlock", {"note": "x"}).status_code == 403
    support = logged_in(console, "support")
    page = support.get("/ops/customers/B0000001")
    assert "본인 확인을 다시 시작" in text(page)
    done = support.post("/ops/customers/B0000001/unlock", {"note": "대표자 전화, 본인 확인"})
    assert "고객에게 문자 메시지로 알렸습니다" in text(done)
    assert Customer.get(Customer.code == "B0000001").self_service_suspended_at is None
    assert "다시 시작했습니다" in last_sms(seeded)
    event = AuditEvent.get(AuditEvent.action == "customer.unlocked")
    assert event.actor == "operator:op.support" and "대표자 전화" in event.details


# -- a customer's history, and "by the bank" on the customer's side ----------------------------

def test_the_customer_page_shows_history_requests_registrations_and_notifications(console,
                                                                                  issued):
    from services import issuance
    from tests.conftest import PERSON, verify_by_sms
    web = logged_in(console)
    web.post(f"/ops/certificates/{issued.serial}/suspend", {"note": "분실 신고"})
    web.post(f"/ops/certificates/{issued.serial}/resume", {"note": "찾음"})
    page = text(web.get("/ops/customers/P0000001"))
    assert "suspend , operator:op.ra-officer" in page and "resume , operator:op.ra-officer" in page
    assert "다른 기관에서 발급받은 인증서" in page and "최근 알림" in page
    assert "sms" in page and "resume" in page              # the text messages it caused
    assert "휴대폰 번호 010-0000-0001" in page and "본인 확인 사용 가능" in page
    business = text(web.get("/ops/customers/B0000001"))
    issuance.request_certificate(issued.customer.__class__.get(code="B0000001"),
                                 "business-banking")
    business = text(web.get("/ops/customers/B0000001"))
    assert "법인 은행/보험용" in business and "requested" in business

    # The customer reads who changed their certificate.
    customer = Browserish(console.test_client())
    assert verify_by_sms(customer, issued.customer, PERSON, start="/my/").request.path == "/my/"
    mine = text(customer.get("/my/"))
    assert "상태 변경" in mine
    assert "은행이 효력정지함" in mine and "은행이 효력회복함" in mine, mine


def test_a_change_the_customer_made_is_not_said_to_be_the_banks(console, issued):
    from services import status
    from tests.conftest import PERSON, verify_by_sms
    status.suspend_certificate(issued, "customer:P0000001")
    customer = Browserish(console.test_client())
    verify_by_sms(customer, issued.customer, PERSON, start="/my/")
    mine = text(customer.get("/my/"))
    assert "상태 변경" in mine and "은행이" not in mine


# -- resending an expiry notice --------------------------------------------------------------

def test_support_sends_an_expiry_notice_again_a_few_times_a_day(console, issued):
    from models import AuditEvent
    from tests.conftest import last_sms
    web = logged_in(console, "support")
    far = text(web.get(f"/ops/certificates/{issued.serial}"))
    assert "만료 안내 다시 보내기" not in far                  # a year away: nothing to remind
    assert web.post(f"/ops/certificates/{issued.serial}/remind", {}).status_code == 409
    move_clock(days=365 - 10)
    web = logged_in(console, "support", "op.support2")
    near = text(web.get(f"/ops/certificates/{issued.serial}"))
    assert "만료 안내 다시 보내기" in near
    for _ in range(3):
        sent = web.post(f"/ops/certificates/{issued.serial}/remind", {})
        assert sent.request.path == f"/ops/certificates/{issued.serial}"
        assert "만료 안내를 다시 보냈습니다" in text(sent)
    assert "만료" in last_sms(issued.customer)
    enough = web.post(f"/ops/certificates/{issued.serial}/remind", {})
    assert enough.status_code == 429 and "오늘 이미 3번" in text(enough)
    assert AuditEvent.select().where((AuditEvent.action == "reminder.resent")
                                     & (AuditEvent.actor == "operator:op.support2")).count() == 3
    auditor = logged_in(console, "auditor")
    assert "만료 안내 다시 보내기" not in text(auditor.get(f"/ops/certificates/{issued.serial}"))


# -- operators and settings, by administrators ---------------------------------------------------

def test_an_admin_adds_resets_and_disables_operators_from_the_console(console):
    from models import AuditEvent
    admin = logged_in(console, "admin", "lee.admin")
    listed = text(admin.get("/ops/operators"))
    assert "lee.admin" in listed and "관리자" in listed and "사용 중" in listed
    empty = admin.post("/ops/operators/new", {"name": "", "role": ""})
    assert empty.status_code == 400
    assert "새 담당자의 이름을 입력해 주세요" in text(empty) and "역할을 선택해 주세요" in text(empty)
    bad = admin.post("/ops/operators/new", {"name": "Park RA!", "role": "support"})
    assert bad.status_code == 400 and "3~32자" in text(bad)
    added = admin.post("/ops/operators/new", {"name": "park.ra", "role": "ra-officer"})
    link = re.search(r'value="(http[^"]+/ops/enrol/[^"]+)"', added.get_data(as_text=True))
    assert link and "24시간" in text(added), text(added)
    again = admin.post("/ops/operators/new", {"name": "park.ra", "role": "support"})
    assert again.status_code == 400 and "이미 있습니다" in text(again)

    # The new officer enrols with the link and works.
    officer = Browserish(console.test_client())
    app_totp = enrol(officer, link.group(1).rsplit("/", 1)[1])
    assert log_in(officer, "park.ra", app_totp).request.path == "/ops/"
    assert "대기 중" not in text(admin.get("/ops/operators/park.ra"))

    # A reset: the old password no longer opens, the session ends, a new link works.
    reset = admin.post("/ops/operators/park.ra/reset", {})
    assert "/ops/enrol/" in reset.get_data(as_text=True)
    assert officer.get("/ops/", follow_redirects=True).request.path == "/ops/login"
    refused = officer.post("/ops/login", {"name": "park.ra", "password": PASSWORD})
    assert refused.status_code == 400
    new_link = re.search(r'value="http[^"]+/ops/enrol/([^"]+)"', reset.get_data(as_text=True))
    app_totp = enrol(officer, new_link.group(1))
    assert log_in(officer, "park.ra", app_totp).request.path == "/ops/"

    disabled = admin.post("/ops/operators/park.ra/disable", {})
    assert disabled.request.path == "/ops/operators" and "park.ra" in text(disabled)
    assert officer.get("/ops/", follow_redirects=True).request.path == "/ops/login"
    assert "사용 중지" in text(admin.get("/ops/operators"))

    own = admin.post("/ops/operators/lee.admin/disable", {})
    assert own.status_code == 403 and "내 계정" in text(own)
    assert admin.get("/ops/operators/nobody").status_code == 404
    actors = {e.action: e.actor for e in AuditEvent.select().where(
        AuditEvent.action.in_(["operator.add", "operator.reset", "operator.disable"])
        & (AuditEvent.target == "park.ra"))}
    assert actors == {"operator.add": "operator:lee.admin", "operator.reset": "operator:lee.admin",
                      "operator.disable": "operator:lee.admin"}


def test_the_settings_page_shows_what_runs_and_no_secret(tmp_path, ca_template):
    from tests.conftest import fresh_app
    application = fresh_app(tmp_path, ca_template, CERTCENTER_OPS="1",
                            CERTCENTER_SMTP_HOST="mail.bank.example",
                            CERTCENTER_SMTP_PASSWORD="smtp-secret-value",
                            CERTCENTER_SMS_URL="https://gw:sms-secret-value@sms.example/send",
                            CERTCENTER_SMS_TOKEN="token-secret-value",
                            CERTCENTER_OPS_ALLOW="127.0.0.0/8")
    admin = logged_in(application, "admin")
    page = admin.get("/ops/settings")
    shown = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "mail.bank.example" in shown and "127.0.0.0/8" in shown and "CERTCENTER_SMTP_HOST" in shown
    assert "secret-value" not in shown
    assert logged_in(application, "ra-officer").get("/ops/settings").status_code == 403


# -- a reference number for the customer's own program (CMP) ---------------------------------

def test_an_officer_issues_a_reference_number_and_support_cannot(console, issued):
    from models import AuditEvent, EnrolmentCode
    from services import enrolment_codes
    support = logged_in(console, "support")
    assert "참조번호 발급" not in text(support.get("/ops/customers/P0000001"))
    web = logged_in(console)
    page = web.get("/ops/customers/P0000001")
    assert "고객 프로그램용 참조번호" in text(page)
    missing = web.post("/ops/customers/P0000001/reference", {})
    assert missing.status_code == 400 and "인증서 종류를 선택해 주세요" in text(missing)
    shown = web.post("/ops/customers/P0000001/reference", {"cert_type": "personal-banking"})
    seen = text(shown)
    reference = re.search(r"참조번호 (\d{8})", seen).group(1)
    code = re.search(r"인가코드 (\w{4} \w{4} \w{4})", seen).group(1).replace(" ", "")
    assert f"-ref {reference} -secret pass:{code}" in shown.get_data(as_text=True)
    assert enrolment_codes.open_pair(reference).code == code.encode()
    event = AuditEvent.get(AuditEvent.action == "enrolment_code.give")
    assert event.actor == "operator:op.ra-officer" and code not in event.details
    business = web.post("/ops/customers/P0000001/reference", {"cert_type": "business-banking"})
    assert business.status_code == 400
    assert "고객 유형(개인·법인)에 맞는 인증서 종류를 선택해 주세요" in text(business)
    assert EnrolmentCode.select().count() == 1
