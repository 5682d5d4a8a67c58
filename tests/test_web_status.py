"""The revoke, suspend and resume pages through the test client: bad input of every kind
gets a clear message and a 4xx, and nothing half-written stays behind."""
import datetime as dt

import pytest

from models import AuditEvent, Certificate, Crl
from services import issuance, renewal, status
from tests.conftest import BUSINESS, move_clock, sms_code, text, verify_by_sms
from tests.test_renewal import expiry, set_kst
from tests.test_web_support import english, error_summary, h1

# Every signature here is made once with the CA keys in files and once in a PKCS#11 token.
pytestmark = pytest.mark.both_backends

PASSWORD = "Blue!sky42x"


def issue_to(customer, type_id="personal-banking", idn="9001011234567"):
    return issuance.issue_certificate(customer, type_id, idn=idn, actor="test",
                                      password=PASSWORD, offer_downloads=False).certificate


@pytest.fixture
def person_cert(demo):
    return issue_to(demo["person"])


@pytest.fixture
def signed_in(web, demo, person_cert):
    english(web)
    verify_by_sms(web, demo["person"])
    move_clock(seconds=31)                 # the next SMS may be sent 30 s after the last
    return web


def up_to_code(web, serial, reason="key-compromise"):
    web.get("/revoke/certificate")
    web.post("/revoke/certificate", {"serial": serial})
    web.post("/revoke/reason", {"reason": reason})
    web.get("/revoke/check")
    web.post("/revoke/check", {})
    return web.post("/revoke/code/sms", {})      # a text message instead of the app


def test_revoking_through_the_pages(signed_in, demo, person_cert):
    response = up_to_code(signed_in, person_cert.serial)
    assert response.request.path == "/revoke/code"
    response = signed_in.post("/revoke/code", {"code": sms_code(demo["person"])})
    assert response.request.path == "/revoke/done" and h1(response) == "Your certificate is revoked"
    assert person_cert.serial in response.get_data(as_text=True)
    assert Certificate.get_by_id(person_cert.id).status == "revoked"


def test_someone_elses_serial_in_the_form_is_refused_and_audited(signed_in, demo):
    request = issuance.request_certificate(demo["business"], "business-banking")
    issuance.approve_request(request.id, "kim", issuance.REQUIRED_DOCUMENTS)
    other = issue_to(demo["business"], "business-banking", "1234567890")
    response = signed_in.post("/revoke/certificate", {"serial": other.serial})
    assert response.status_code == 404
    assert error_summary(response) == [("serial", "Select one of your certificates")]
    assert Certificate.get_by_id(other.id).status == "valid"
    assert AuditEvent.select().where(AuditEvent.action == "certificate.foreign_attempt").count() == 1


def test_a_made_up_serial_gets_a_message(signed_in):
    response = signed_in.post("/revoke/certificate", {"serial": "zz"})
    assert response.status_code == 400
    assert error_summary(response) == [("serial", "Enter the serial number as 40 hexadecimal digits")]


def test_no_choice_and_no_reason_get_messages(signed_in, person_cert):
    response = signed_in.post("/revoke/certificate", {})
    assert response.status_code == 400 and error_summary(response)[0][0] == "serial"
    signed_in.post("/revoke/certificate", {"serial": person_cert.serial})
    response = signed_in.post("/revoke/reason", {})
    assert response.status_code == 400 and error_summary(response)[0][0] == "reason"
    response = signed_in.post("/revoke/reason", {"reason": "privilege-withdrawn"})  # operators only
    assert response.status_code == 400


def test_a_wrong_code_changes_nothing(signed_in, person_cert):
    up_to_code(signed_in, person_cert.serial)
    crls = Crl.select().count()
    response = signed_in.post("/revoke/code", {"code": "000000"})
    assert response.status_code == 400 and error_summary(response)[0][0] == "code"
    assert Certificate.get_by_id(person_cert.id).status == "valid"
    assert Crl.select().count() == crls


def test_a_double_submit_revokes_once(signed_in, demo, person_cert):
    up_to_code(signed_in, person_cert.serial)
    code = sms_code(demo["person"])
    cookie = signed_in.client.get_cookie("cc_session").value
    first = signed_in.post("/revoke/code", {"code": code}, follow=False)
    signed_in.client.set_cookie("cc_session", cookie)          # the same form, posted again
    second = signed_in.post("/revoke/code", {"code": code}, follow=False)
    assert first.status_code == 303 and second.status_code in (303, 400)
    assert AuditEvent.select().where(AuditEvent.action == "certificate.revoke").count() == 1


def test_a_certificate_already_revoked_is_not_offered_and_is_refused(signed_in, person_cert):
    status.revoke_certificate(person_cert, "superseded", actor="test")
    response = signed_in.get("/revoke/certificate")
    assert person_cert.serial not in response.get_data(as_text=True)
    assert "You have no certificate that can be revoked." in response.get_data(as_text=True)
    response = signed_in.post("/revoke/certificate", {"serial": person_cert.serial})
    assert response.status_code == 409


def test_suspend_then_resume_needs_a_fresh_code_each_time(signed_in, demo, person_cert):
    signed_in.post("/suspend/certificate", {"serial": person_cert.serial})
    signed_in.post("/suspend/check", {})
    signed_in.post("/suspend/code/sms", {})
    used = sms_code(demo["person"])
    response = signed_in.post("/suspend/code", {"code": used})
    assert h1(response) == "Your certificate is suspended"
    my = signed_in.get("/my/").get_data(as_text=True)
    assert "Suspended" in my and "/resume/certificate" in my
    move_clock(seconds=31)
    signed_in.post("/resume/certificate", {"serial": person_cert.serial})
    signed_in.post("/resume/check", {})
    signed_in.post("/resume/code/sms", {})
    assert signed_in.post("/resume/code", {"code": used}).status_code == 400   # not the old one
    response = signed_in.post("/resume/code", {"code": sms_code(demo["person"])})
    assert h1(response) == "Your certificate works again"
    assert Certificate.get_by_id(person_cert.id).status == "valid"


def test_the_flow_needs_verification_first(web, person_cert):
    response = web.get("/revoke/certificate", follow_redirects=False)
    assert response.status_code == 303 and response.headers["Location"].endswith("/verify/")


def test_a_renewed_certificate_follows_its_successor_and_the_page_says_so(web, demo, person_cert):
    set_kst(expiry(person_cert) - dt.timedelta(days=10), 10)
    new = renewal.renew_certificate(person_cert, "test").certificate
    english(web)
    verify_by_sms(web, demo["person"])
    move_clock(seconds=31)
    page = web.get("/suspend/certificate").get_data(as_text=True)
    assert new.serial in page and person_cert.serial not in page   # offered once, as the new one
    response = web.post("/suspend/certificate", {"serial": person_cert.serial})
    assert response.status_code == 409                               # not on its own
    web.post("/suspend/certificate", {"serial": new.serial})
    response = web.get("/suspend/check")
    assert (f"Your certificate with serial {person_cert.serial}, valid until "
            f"{expiry(person_cert):%B %-d, %Y}, is suspended with it: it was renewed into this "
            "one.") in text(response)
    web.post("/suspend/check", {})
    web.post("/suspend/code/sms", {})
    response = web.post("/suspend/code", {"code": sms_code(demo["person"])})
    assert response.request.path == "/suspend/done"
    assert [Certificate.get_by_id(c.id).status for c in (person_cert, new)] == ["suspended"] * 2


def test_a_certificate_renewed_between_choosing_and_the_code_is_not_changed_alone(
        web, demo, person_cert):
    set_kst(expiry(person_cert) - dt.timedelta(days=10), 10)
    english(web)
    verify_by_sms(web, demo["person"])
    move_clock(seconds=31)
    web.post("/suspend/certificate", {"serial": person_cert.serial})
    web.post("/suspend/check", {})
    web.post("/suspend/code/sms", {})
    code = sms_code(demo["person"])
    new = renewal.auto_renew(renewal.set_auto_renewal(person_cert, 30, "test"))
    response = web.post("/suspend/code", {"code": code})
    assert response.status_code == 409
    assert error_summary(response)[0][0] == "serial" and new.serial in text(response)
    assert [Certificate.get_by_id(c.id).status for c in (person_cert, new)] == ["valid"] * 2


def test_a_renewed_certificate_held_on_its_own_can_be_resumed(web, demo, person_cert):
    set_kst(expiry(person_cert) - dt.timedelta(days=10), 10)
    renewal.renew_certificate(person_cert, "test")
    status.suspend_certificate(Certificate.get_by_id(person_cert.id), actor="operator:kim")
    english(web)
    verify_by_sms(web, demo["person"])
    page = web.get("/resume/certificate").get_data(as_text=True)
    assert person_cert.serial in page             # its successor is not suspended: offered alone


def test_an_sms_only_customer_can_suspend_right_after_verifying(web, demo):
    """The code that verified them a moment ago does not hold back the next one (it was a
    429 "request again in 28 s" for a request nobody made)."""
    business = demo["business"]
    request = issuance.request_certificate(business, "business-banking")
    issuance.approve_request(request.id, "kim", issuance.REQUIRED_DOCUMENTS)
    cert = issue_to(business, "business-banking", "1234567890")
    english(web)
    verify_by_sms(web, business, details=BUSINESS)
    web.post("/suspend/certificate", {"serial": cert.serial})
    web.get("/suspend/check")
    asked = web.post("/suspend/check", {})
    assert asked.status_code == 200 and asked.request.path == "/suspend/code"
    done = web.post("/suspend/code", {"code": sms_code(business)})
    assert done.request.path == "/suspend/done"
    assert Certificate.get_by_id(cert.id).status == "suspended"
