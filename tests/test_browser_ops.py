"""The operators' console in a real browser, JavaScript on and off: enrolment from the link,
login by keyboard with a password and an authenticator code, the dashboard, logout; axe-core
on every page and error state."""
import re

import pyotp
import pytest

from services import clock, operators
from tests.browser import assert_accessible, new_page, submit, tab_to
from tests.conftest import move_clock

PASSWORD = "quiet lantern orbit 42 maple"


@pytest.fixture
def app(console):
    """The console switched on (this module's `live` serves it)."""
    return console


def officer(name: str, role: str = "ra-officer") -> pyotp.TOTP:
    """An enrolled operator; returns their authenticator."""
    secret = pyotp.random_base32()
    _, link = operators.add_operator(name, role, "test")
    operators.complete_enrolment(link.rsplit("/", 1)[1], PASSWORD, secret,
                                 pyotp.TOTP(secret).at(clock.timestamp()))
    return pyotp.TOTP(secret)


def approve_on_the_page(page):
    """Tick the two documents every approval needs, and approve (or confirm)."""
    page.check("input[value='business-registration']")
    page.check("input[value='representative-id']")
    page.locator("form[action$='/approve'] button").click()


def seeded_certificate(app):
    """The demo customers, and a personal-banking certificate for P0000001."""
    from models import Customer
    from services import issuance
    assert app.test_cli_runner().invoke(args=["demo", "seed"]).exit_code == 0
    return issuance.issue_certificate(Customer.get(Customer.code == "P0000001"),
                                      "personal-banking", idn="9001011234567", actor="test",
                                      password="Blue!sky42x", offer_downloads=False).certificate


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_an_operator_enrols_logs_in_by_keyboard_and_logs_out(app, chromium, live, javascript):
    _, link = operators.add_operator("kim.ra", "ra-officer", "test")
    page = new_page(chromium, live, javascript)
    page.goto(link.replace("http://127.0.0.1:5000", live))
    assert page.locator("h1").inner_text() == "콘솔 계정 설정"
    assert_accessible(page, "enrolment")
    key = re.sub(r"\s", "", page.locator(".key").inner_text())
    app_totp = pyotp.TOTP(key)

    page.fill("#password", "password1234")
    page.fill("#code", app_totp.now())
    submit(page, javascript)
    assert "너무 쉽게 추측할 수 있는 비밀번호입니다" in page.locator(".error-summary").inner_text()
    assert_accessible(page, "enrolment with an error")
    page.fill("#password", PASSWORD)
    page.fill("#code", app_totp.now())
    submit(page, javascript)
    page.wait_for_url("**/ops/login")
    assert "비밀번호와 인증 앱을 설정했습니다" in page.locator("main").inner_text()
    assert_accessible(page, "login")

    # By keyboard only: Tab to each field, type, Enter.
    tab_to(page, "#name")
    page.keyboard.type("kim.ra")
    tab_to(page, "#password")
    page.keyboard.type("not my password at all")
    page.keyboard.press("Enter")
    page.wait_for_load_state()
    if javascript:
        page.wait_for_function("() => !document.querySelector('.htmx-request')")
    assert "이름 또는 비밀번호가 맞지 않습니다" in page.locator(".error-summary").inner_text()
    assert_accessible(page, "login with an error")
    page.fill("#name", "")
    tab_to(page, "#name")
    page.keyboard.type("kim.ra")
    tab_to(page, "#password")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url("**/ops/login/code")
    assert_accessible(page, "code")
    move_clock(seconds=30)
    tab_to(page, "#code")
    page.keyboard.type(app_totp.at(clock.timestamp()))
    page.keyboard.press("Enter")
    page.wait_for_url("**/ops/")
    assert page.locator("h1").inner_text() == "콘솔"
    assert "승인을 기다리는 사업자 인증서 신청" in page.locator("main").inner_text()
    assert_accessible(page, "dashboard")

    tab_to(page, "header button")
    page.keyboard.press("Enter")
    page.wait_for_url("**/ops/login")
    assert "로그아웃했습니다" in page.locator("main").inner_text()


def log_in_on_the_page(page, live, name, app_totp, javascript):
    page.goto(f"{live}/ops/login")
    page.fill("#name", name)
    page.fill("#password", PASSWORD)
    submit(page, javascript)
    page.wait_for_url("**/ops/login/code")
    move_clock(seconds=30)
    page.fill("#code", app_totp.at(clock.timestamp()))
    submit(page, javascript)
    page.wait_for_url("**/ops/")


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_an_officer_rejects_then_approves_business_requests(app, chromium, live, javascript):
    from services import issuance
    from tests.conftest import last_sms
    seeded = app.test_cli_runner().invoke(args=["demo", "seed"])
    assert seeded.exit_code == 0, seeded.output
    from models import Customer
    business = Customer.get(Customer.code == "B0000001")
    first = issuance.request_certificate(business, "business-banking")
    page = new_page(chromium, live, javascript)
    log_in_on_the_page(page, live, "kim.ra", officer("kim.ra"), javascript)

    page.goto(f"{live}/ops/requests")
    assert_accessible(page, "requests queue")
    page.click(f"a[href$='/ops/requests/{first.id}']")
    page.wait_for_url(f"**/ops/requests/{first.id}")
    assert_accessible(page, "request detail")
    page.locator("form[action$='/reject'] button").click()
    page.wait_for_load_state()
    if javascript:
        page.wait_for_function("() => !document.querySelector('.htmx-request')")
    assert "반려 사유를 입력해 주세요" in page.locator(".error-summary").inner_text()
    assert_accessible(page, "request detail with an error")
    page.fill("#reason", "대표자 신분증 사본이 없습니다")
    page.locator("form[action$='/reject'] button").click()
    page.wait_for_url("**/ops/requests")
    assert "반려했습니다" in page.locator("main").inner_text()
    assert "대표자 신분증 사본이 없습니다" in last_sms(business)

    second = issuance.request_certificate(business, "business-banking")
    page.goto(f"{live}/ops/requests/{second.id}")
    page.check("input[value='business-registration']")
    page.locator("form[action$='/approve'] button").click()
    page.wait_for_load_state()
    if javascript:
        page.wait_for_function("() => !document.querySelector('.htmx-request')")
    assert "대표자 신분증은 꼭 확인해야" in page.locator(".error-summary").inner_text()
    assert page.is_checked("input[value='business-registration']")
    assert_accessible(page, "approval with a document missing")
    approve_on_the_page(page)
    page.wait_for_url("**/ops/requests")
    assert "승인했습니다" in page.locator("main").inner_text()
    assert_accessible(page, "requests queue after approving")
    assert issuance.find_request(second.id).status == "approved"

    # The representative comes back and completes it.
    customer_finishes_the_business_certificate(chromium, live, javascript, business)


def customer_finishes_the_business_certificate(chromium, live, javascript, business):
    from models import Certificate
    from tests.conftest import BUSINESS, sms_code
    page = new_page(chromium, live, javascript)
    page.goto("/issue/terms")
    page.wait_for_url("**/verify/")
    for field, value in BUSINESS.items():
        page.fill(f"#{field}", value)
    submit(page, javascript)
    page.wait_for_url("**/verify/code")                       # no app: a text message
    page.fill("#code", sms_code(business))
    submit(page, javascript)
    page.wait_for_url("**/issue/terms")
    page.check("#agree")
    submit(page, javascript)
    page.wait_for_url("**/issue/type")
    page.check("input[value='business-banking']")
    submit(page, javascript)
    page.wait_for_url("**/issue/key")
    page.check("input[value='generate']")
    submit(page, javascript)
    page.wait_for_url("**/issue/password")
    page.fill("#password", "Blue!sky42x")
    page.fill("#password_again", "Blue!sky42x")
    submit(page, javascript)
    page.wait_for_url("**/issue/check")
    submit(page, javascript)
    page.wait_for_url("**/issue/done")
    issued = Certificate.get((Certificate.customer == business)
                             & (Certificate.cert_type == "business-banking"))
    assert issued.serial in page.locator("main").inner_text()
    assert page.locator("a[href^='/download/']").count() >= 2


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_an_officer_finds_a_customer_and_revokes_on_their_behalf(app, chromium, live, javascript,
                                                                 tmp_path):
    import subprocess

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    from services import ca_store
    record = seeded_certificate(app)
    page = new_page(chromium, live, javascript)
    log_in_on_the_page(page, live, "kim.ra", officer("kim.ra"), javascript)

    page.click("a[href$='/ops/search']")
    page.wait_for_url("**/ops/search")
    assert_accessible(page, "search")
    page.fill("#q", "900101-1234567")
    page.keyboard.press("Enter")
    page.wait_for_url("**/ops/search?q=*")
    assert_accessible(page, "search results")
    page.click("a[href$='/ops/customers/P0000001']")
    page.wait_for_url("**/ops/customers/P0000001")
    assert_accessible(page, "customer")
    page.click(f"a[href$='/ops/certificates/{record.serial}']")
    page.wait_for_url(f"**/ops/certificates/{record.serial}")
    assert_accessible(page, "certificate")
    page.click(f"a[href$='/{record.serial}/revoke']")
    page.wait_for_url(f"**/{record.serial}/revoke")
    assert_accessible(page, "revoke")
    submit(page, javascript)
    assert "폐기 사유를 선택해 주세요" in page.locator(".error-summary").inner_text()
    assert_accessible(page, "revoke with an error")
    page.check("input[value='affiliation-changed']")
    page.fill("#note", "고객 전화: 휴대폰 분실")
    submit(page, javascript)
    page.wait_for_url(f"**/ops/certificates/{record.serial}")
    assert "인증서를 폐기했습니다" in page.locator("main").inner_text()
    assert_accessible(page, "certificate after revoking")

    keys = ca_store.load_ca()
    for name, item in (("root.pem", keys.root_cert), ("issuing.pem", keys.issuing_cert),
                       ("cert.pem", x509.load_der_x509_certificate(bytes(record.der)))):
        (tmp_path / name).write_bytes(item.public_bytes(serialization.Encoding.PEM))
    run = subprocess.run(["openssl", "ocsp", "-issuer", "issuing.pem", "-cert", "cert.pem",
                          "-CAfile", "root.pem", "-url", f"{live}/ocsp"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)
    assert "Response verify OK" in run.stderr, run.stderr
    assert "cert.pem: revoked" in run.stdout and "Reason: affiliationChanged" in run.stdout


def test_an_auditor_reads_and_verifies_the_trail_and_is_refused_every_change(app, chromium,
                                                                               live):
    from services import issuance
    record = seeded_certificate(app)
    page = new_page(chromium, live, javascript=False)
    log_in_on_the_page(page, live, "lee.audit", officer("lee.audit", "auditor"), javascript=False)
    page.click("a[href$='/ops/audit']")
    page.wait_for_url("**/ops/audit")
    assert "certificate.issue" in page.locator("main").inner_text()
    assert_accessible(page, "audit trail")
    page.click("a[href$='/ops/audit/verify']")
    page.wait_for_url("**/ops/audit/verify")
    assert "기록이 온전합니다" in page.locator("main").inner_text()
    assert_accessible(page, "audit verification")
    page.goto(f"{live}/ops/certificates/{record.serial}")
    assert page.locator("a[href$='/revoke']").count() == 0
    for change in ("revoke", "suspend"):
        response = page.goto(f"{live}/ops/certificates/{record.serial}/{change}")
        assert response.status == 403
    assert "내 역할로는 할 수 없는 일입니다" in page.locator("main").inner_text()
    assert_accessible(page, "refused")
    assert issuance.in_force(record.customer, "personal-banking").count() == 1



@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_a_second_officer_confirms_a_business_general_approval(app, chromium, live, javascript):
    from models import Customer
    from services import issuance
    app.test_cli_runner().invoke(args=["demo", "seed"])
    asked = issuance.request_certificate(Customer.get(Customer.code == "B0000001"),
                                         "business-general")
    first, second = officer("op.first"), officer("op.second")
    page = new_page(chromium, live, javascript)
    log_in_on_the_page(page, live, "op.first", first, javascript)
    page.goto(f"{live}/ops/requests/{asked.id}")
    approve_on_the_page(page)
    page.wait_for_url("**/ops/requests")
    assert "두 번째 담당자가 필요합니다" in page.locator("main").inner_text()
    page.goto(f"{live}/ops/requests/{asked.id}")
    assert "다른 담당자가 내 승인을 확인해야 합니다" in page.locator("main").inner_text()
    assert_accessible(page, "approval waiting for a second officer")

    other = new_page(chromium, live, javascript)
    log_in_on_the_page(other, live, "op.second", second, javascript)
    other.goto(f"{live}/ops/requests/{asked.id}")
    assert_accessible(other, "approval to confirm")
    approve_on_the_page(other)
    other.wait_for_url("**/ops/requests")
    assert "신청을 승인했습니다" in other.locator("main").inner_text()
    assert issuance.find_request(asked.id).status == "approved"


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_an_admin_adds_an_operator_who_enrols_and_is_cut_off_when_disabled(app, chromium, live,
                                                                           javascript):
    admin = new_page(chromium, live, javascript)
    log_in_on_the_page(admin, live, "lee.admin", officer("lee.admin", "admin"), javascript)
    admin.click("a[href$='/ops/operators']")
    admin.wait_for_url("**/ops/operators")
    assert_accessible(admin, "operators")
    admin.click("a[href$='/ops/operators/new']")
    admin.wait_for_url("**/ops/operators/new")
    assert_accessible(admin, "add an operator")
    submit(admin, javascript)
    assert "새 담당자의 이름을 입력해 주세요" in admin.locator(".error-summary").inner_text()
    assert_accessible(admin, "add an operator with errors")
    tab_to(admin, "#name")
    admin.keyboard.type("park.support")
    admin.check("input[value='support']")
    submit(admin, javascript)
    link = admin.locator("#link").input_value()
    assert "/ops/enrol/" in link
    assert_accessible(admin, "enrolment link")

    # The new operator enrols on their own machine and starts work.
    newcomer = new_page(chromium, live, javascript)
    newcomer.goto(link.replace("http://127.0.0.1:5000", live))
    app_totp = pyotp.TOTP(re.sub(r"\s", "", newcomer.locator(".key").inner_text()))
    newcomer.fill("#password", PASSWORD)
    newcomer.fill("#code", app_totp.now())
    submit(newcomer, javascript)
    newcomer.wait_for_url("**/ops/login")
    log_in_on_the_page(newcomer, live, "park.support", app_totp, javascript)
    assert newcomer.locator("a[href$='/ops/search']").count() == 1

    # The administrator disables the account: the newcomer's next step lands on the login page.
    admin.goto(f"{live}/ops/operators/park.support")
    assert_accessible(admin, "operator")
    admin.locator("form[action$='/disable'] button").click()
    admin.wait_for_url("**/ops/operators")
    assert "park.support 계정을 사용 중지했습니다" in admin.locator("main").inner_text()
    assert_accessible(admin, "operators after disabling")
    newcomer.click("a[href$='/ops/search']")
    newcomer.wait_for_url("**/ops/login")
    assert "세션이 끝났습니다" in newcomer.locator("main").inner_text()


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_an_auditor_filters_and_pages_the_trail_by_keyboard(app, chromium, live, javascript):
    from services import audit
    record = seeded_certificate(app)
    for number in range(60):
        audit.record("operator:kim.ra", "certificate.suspend", record.serial, number=number)
    page = new_page(chromium, live, javascript)
    log_in_on_the_page(page, live, "lee.audit", officer("lee.audit", "auditor"), javascript)
    page.goto(f"{live}/ops/audit")
    tab_to(page, "#action")
    page.keyboard.type("certificate.suspend")
    page.keyboard.press("Enter")
    page.wait_for_url("**/ops/audit?*action=certificate.suspend*")
    if javascript:
        page.wait_for_function("() => document.activeElement.id === 'results'")
    rows = page.locator("main tbody tr")
    assert rows.count() == 50
    assert_accessible(page, "filtered audit trail")
    tab_to(page, "a[href*='before=']")
    page.keyboard.press("Enter")
    page.wait_for_url("**/ops/audit?*before=*")
    if javascript:
        page.wait_for_function("() => document.activeElement.id === 'results'")
    assert page.locator("main tbody tr").count() == 10
    assert_accessible(page, "older events")
    page.go_back()
    page.wait_for_url(re.compile(r".*/ops/audit\?(?!.*before=).*action=certificate.suspend.*"))


@pytest.mark.parametrize("language", ["ko-KR", "en-US"])
def test_every_console_page_every_role_may_open_passes_axe(app, chromium, live, language):
    """Each GET page of the console as each role sees it, filled (a customer with history,
    notifications, a request, an operator list), in Korean and in English."""
    from services import status
    from tests.test_web_ops import console_routes
    record = seeded_certificate(app)
    status.suspend_certificate(record, "operator:kim.ra", note="분실")
    status.resume_certificate(record, "customer:P0000001")
    move_clock(days=360)                 # within the expiry notice's reach
    pages = [(url, action) for method, url, action in console_routes(app, record)
             if method == "GET" and not url.endswith(".csv")]
    pages += [("/ops/search?q=P0000001", "lookup"), ("/ops/audit?since=yesterday", "read_audit")]
    seen = 0
    for role in operators.ROLES:
        page = new_page(chromium, live, javascript=True, language=language)
        log_in_on_the_page(page, live, "op." + role, officer("op." + role, role), True)
        for url, action in pages:
            if action in operators.PERMISSIONS[role]:
                page.goto(live + url)
                assert_accessible(page, f"{url} as {role} in {language}")
                seen += 1
    assert seen >= 30


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_an_officer_gives_a_customer_a_pair_for_their_own_program(app, chromium, live,
                                                                  javascript):
    seeded_certificate(app)
    page = new_page(chromium, live, javascript=javascript)
    log_in_on_the_page(page, live, "kim.ra", officer("kim.ra"), javascript)
    page.goto(live + "/ops/customers/P0000001")
    submit(page, javascript, "form[action$='/reference'] button")
    assert page.locator("#cert_type-error").is_visible()
    assert_accessible(page, "console: no type chosen")
    page.check("input[value='personal-banking']")
    submit(page, javascript, "form[action$='/reference'] button")
    assert "-ref " in page.locator("pre.command").inner_text()
    assert_accessible(page, "console: the pair")
