"""Issue 9's smaller findings, each kept fixed: ids in URLs, domain errors no page handles,
text with control characters, SMS codes at rest, a CRL publication that was lost, and a
confirm button pressed after a crash; and what bench/hostile.py found: digits other than
ASCII, fields of the wrong kind, a language switch to CR/LF, a PEM made to backtrack."""
import io
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from app import create_app
from models import AttemptCounter, Certificate, CertificateRequest, Customer, Notification
from pki import bundle
from pki import signer as pki_signer
from pki.errors import PkiError
from services import clock, customers, issuance, jobs, status, transfer, verification
from services.errors import DomainError
from tests.conftest import PERSON, move_clock, text, verify_by_sms
from tests.test_web_support import agree_and_choose, english, h1, key_and_password


def test_an_id_too_large_for_the_database_is_no_page_not_a_500(web, demo):
    verify_by_sms(web, demo["person"])
    for url in ("/register/99999999999999999999/remove", "/register/9223372036854775808/remove"):
        response = web.get(url)
        assert response.status_code == 404, url
    assert web.get("/register/9223372036854775807/remove").status_code == 404   # nobody's


def test_a_domain_error_no_page_handles_gets_its_message_and_status(app):
    def refuse():
        raise DomainError("request_waiting", status=409)
    app.add_url_rule("/test/refused", "refused", refuse)
    client = app.test_client()
    client.set_cookie("lang", "en")
    response = client.get("/test/refused")
    assert response.status_code == 409
    assert h1(response) == "There is a problem"
    assert "Your request is waiting for approval by bank staff" in text(response)


@pytest.mark.parametrize("name", ["홍길동\n관리자", "홍\t길동", "홍길동\x07", "홍길동\u202edcba",
                                  "홍길\u200b동", "홍길동\u2028"])
def test_names_with_control_characters_are_refused_with_a_message(app, name):
    with pytest.raises(DomainError) as refused:
        customers.add_customer(customers.NewCustomer(
            kind="personal", name=name, rrn="850101-1000000", phone="010-1234-5678",
            account="333-000-000001", pin="1234"), "test")
    assert refused.value.code == "text_control_characters" and refused.value.field == "name"
    assert Customer.select().count() == 0


def test_the_cli_says_what_is_wrong_with_a_name(app):
    result = app.test_cli_runner().invoke(args=[
        "customers", "add", "--name", "이몽룡\u202e", "--rrn", "850101-1000000",
        "--phone", "010-1234-5678", "--account", "333-000-000001", "--pin", "1234"])
    assert result.exit_code != 0
    assert "줄바꿈" in result.output or "line breaks" in result.output


@pytest.mark.parametrize("email, ok", [
    ("gildong@example.com", True), ("Gil.Dong+bank@mail.example.co.kr", True),
    ("gildong@localhost", False), ("gil dong@example.com", False), ("gildong@@example.com", False),
    ("gildong@example.com\nBcc: x@example.com", False), ("@example.com", False),
    ("gildong@exa_mple.com", False), ("a" * 250 + "@example.com", False)])
def test_emails_are_validated_as_emails(app, email, ok):
    if ok:
        assert customers.normalise_email(email)
    else:
        with pytest.raises(DomainError) as refused:
            customers.normalise_email(email)
        assert refused.value.code in ("email_format", "text_control_characters", "text_too_long")


def test_a_rejection_reason_with_a_line_break_is_refused(demo):
    request = issuance.request_certificate(demo["business"], "business-banking")
    with pytest.raises(DomainError) as refused:
        issuance.reject_request(request.id, "kim", "서류 미비\n[은행] 링크를 누르세요")
    assert refused.value.code == "text_control_characters"
    assert CertificateRequest.get_by_id(request.id).status == "requested"


# -- a CRL publication is never lost -----------------------------------------------------------

def crl_serials(web, url="/pki/issuing.crl") -> set[int]:
    crl = x509.load_der_x509_crl(web.get(url).get_data())
    return {entry.serial_number for entry in crl}


def crash(*_scope):
    raise SystemExit("killed between the commit and the CRL")


def issued_to(customer):
    return issuance.issue_certificate(customer, "personal-banking", idn="9001011234567",
                                      actor="test", password="Blue!sky42x",
                                      offer_downloads=False).certificate


def test_a_crash_before_the_crl_is_published_is_caught_up_by_jobs_run(app, demo, web, monkeypatch):
    cert = issued_to(demo["person"])
    status.publish_crl()
    status.publish_crl(cert.crl_partition)
    monkeypatch.setattr(status, "publish_crl", crash)
    with pytest.raises(SystemExit):
        status.revoke_certificate(cert, "key-compromise", actor="test")
    monkeypatch.undo()
    assert Certificate.get_by_id(cert.id).status == "revoked"         # the change committed
    named = f"/pki/crl/{cert.crl_partition}.crl"                       # what the certificate names
    assert int(cert.serial, 16) not in crl_serials(web, named)         # that CRL is stale
    assert "Publish a new CRL." in [task.plan for task in jobs.tasks(clock.now())]
    result = app.test_cli_runner().invoke(args=["jobs", "run"])
    assert result.exit_code == 0 and "Published CRL" in result.output
    assert int(cert.serial, 16) in crl_serials(web, named)
    assert int(cert.serial, 16) in crl_serials(web)
    assert "Publish a new CRL." not in [task.plan for task in jobs.tasks(clock.now())]


def test_a_crash_before_the_crl_is_published_is_caught_up_at_the_next_start(app, demo, monkeypatch):
    cert = issued_to(demo["person"])
    before = status.publish_crl().number
    monkeypatch.setattr(status, "publish_crl", crash)
    with pytest.raises(SystemExit):
        status.suspend_certificate(cert, actor="test")
    monkeypatch.undo()
    create_app({"CERTCENTER_INSTANCE": str(app.config["INSTANCE"]), "TESTING": True})
    # The start publishes the CRL the certificate names; the full CRL, when next asked for.
    assert status.unpublished_changes() == 1
    assert status.latest_crl().number == before + 1 and status.unpublished_changes() == 0
    for latest in (status.latest_crl(), status.latest_crl(cert.crl_partition)):
        assert int(cert.serial, 16) in {
            e.serial_number for e in x509.load_der_x509_crl(bytes(latest.der))}


# -- a press whose work died does not use up the button -------------------------------------

def test_a_confirm_press_that_crashed_before_issuing_does_not_block_the_next(web, demo, monkeypatch):
    verify_by_sms(web, demo["person"])
    agree_and_choose(web)
    key_and_password(web)
    real_sign = pki_signer.Signer.certificate

    def killed(*args, **kwargs):
        raise RuntimeError("the worker died while signing")
    monkeypatch.setattr(pki_signer.Signer, "certificate", killed)
    with pytest.raises(RuntimeError):
        web.post("/issue/check", {})
    assert Certificate.select().count() == 0
    monkeypatch.setattr(pki_signer.Signer, "certificate", real_sign)
    again = web.post("/issue/check", {})                    # the same button, pressed again
    assert again.request.path == "/issue/done", h1(again)
    assert Certificate.select().count() == 1


def test_a_second_press_of_a_confirm_button_that_worked_issues_nothing_more(web, demo):
    verify_by_sms(web, demo["person"])
    agree_and_choose(web)
    key_and_password(web)
    form_token = web.token
    assert web.post("/issue/check", {}).request.path == "/issue/done"
    web.token = form_token
    twice = web.client.post("/issue/check", data={"csrf_token": form_token}, follow_redirects=True)
    assert twice.request.path in ("/issue/done", "/issue/terms")
    assert Certificate.select().count() == 1


def test_coming_back_from_the_download_page_the_reissue_names_what_it_would_revoke(web, demo):
    verify_by_sms(web, demo["person"])
    english(web)
    agree_and_choose(web)
    key_and_password(web)
    done = web.post("/issue/check", {})
    serial = Certificate.get().serial
    assert done.request.path == "/issue/done"
    move_clock(minutes=3)
    back = web.get("/issue/check", follow_redirects=True)         # Back: the flow is over
    assert back.request.path == "/issue/terms"
    agree_and_choose(web)
    check = key_and_password(web)
    words = text(check)
    assert f"Your current certificate (serial {serial}) will be revoked" in words
    assert "You got that certificate 3 minutes ago" in words
    assert "Keep it and go to My certificates" in words
    assert issuance.plan(demo["person"], "personal-banking").current_age_minutes == 3
    move_clock(hours=25)
    assert issuance.plan(demo["person"], "personal-banking").current_age_minutes is None


# -- hostile input from bench/hostile.py: a message and a 4xx, never a 500 -----------------

ARABIC_INDIC, FULL_WIDTH = "٩٠٠١٠١١٢٣٤٥٦٧", "９００１０１１２３４５６７"


@pytest.mark.parametrize("field, value", [
    ("rrn", ARABIC_INDIC), ("rrn", FULL_WIDTH), ("pin", "١٢٣٤"), ("pin", "１２３４"),
    ("account", "١١٠١٢٣٤٥٦٧٨٩"), ("business_number", "١٢٣٤٥٦٧٨٩٠")])
def test_digits_other_than_ascii_in_identity_details_are_a_typing_mistake(web, demo, field, value):
    details = {**PERSON, field: value}
    response = web.post("/verify/", details)
    assert response.status_code == 400, (field, value)
    assert AttemptCounter.select().count() == 0          # refused before any try was counted


@pytest.mark.parametrize("code", ["١٢٣٤٥٦", "１２３４５６", "12345\u0663"])
def test_digits_other_than_ascii_in_a_code_are_a_typing_mistake(web, demo, code):
    if "/verify/method" in web.post("/verify/", PERSON).request.path:
        web.post("/verify/method", {"method": "totp"})
    response = web.post("/verify/code", {"code": code})
    assert response.status_code == 400
    assert "6-digit" in text(response) or "6자리" in text(response)
    with pytest.raises(DomainError) as refused:
        verification.check_totp(demo["person"], code)
    assert refused.value.code == "code_format"


def test_digits_other_than_ascii_in_a_transfer_code_are_a_typing_mistake(app):
    with pytest.raises(DomainError) as refused:
        transfer.normalise_code("١٢٣٤٥٦٧٨٩٠١٢")
    assert refused.value.code == "transfer_code_format"


def test_a_text_field_sent_as_a_file_is_an_empty_field(web, demo):
    web.get("/verify/")
    response = web.client.post("/verify/", data={
        **PERSON, "csrf_token": web.token, "name": (io.BytesIO("홍길동".encode()), "name.txt")})
    assert response.status_code == 400
    assert Notification.select().count() == 0


def test_a_file_field_sent_as_text_is_an_empty_field(web, demo):
    web.get("/transfer/send")
    response = web.client.post("/transfer/send", data={"csrf_token": web.token, "files": "x"},
                               content_type="multipart/form-data")
    assert response.status_code == 400


@pytest.mark.parametrize("target", ["/my/\r\nSet-Cookie: x=1", "/\r\n", "/my/%0d%0a", "/\\evil.example",
                                    "/\t/evil.example", "//evil.example", "https://evil.example/"])
def test_the_language_switch_goes_back_only_to_a_page_of_ours(app, target):
    response = app.test_client().get("/lang/en", query_string={"next": target})
    assert response.status_code == 303
    location = response.headers["Location"]
    assert location.startswith("/") and not location.startswith(("//", "/\\"))
    assert "\r" not in location and "\n" not in location and "\t" not in location


def test_a_pem_with_thousands_of_begin_lines_is_refused_at_once():
    content = b"-----BEGIN CERTIFICATE-----\n" * 9000
    started = time.perf_counter()
    with pytest.raises(PkiError) as refused:
        bundle.read_bundle([("cert.pem", content)])
    assert refused.value.code == "bundle_unknown_file"
    assert time.perf_counter() - started < 0.5


def test_a_pem_with_more_blocks_than_a_certificate_needs_is_refused(demo):
    cert = issued_to(demo["person"])
    pem = x509.load_der_x509_certificate(bytes(cert.der)).public_bytes(Encoding.PEM)
    assert bundle._classify_pem("one.pem", pem)
    with pytest.raises(PkiError):
        bundle._classify_pem("many.pem", pem * (bundle.MAX_PEM_BLOCKS + 1))
