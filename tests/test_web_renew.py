"""The renewal pages through the test client: certificate login with files or a signature,
new or same key, the files a customer downloads, each refusal's page, automatic renewal from
My certificates and the choice a manual renewal offers while it is on."""
import base64
import datetime as dt
import io
import re
import threading
import zipfile

import pyotp
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from models import AuditEvent, Certificate
from pki import npki, pkcs12
from services import clock, issuance, renewal, status
from tests.conftest import move_clock, text, verify_by_sms
from tests.test_renewal import PASSWORD, RRN, expiry, set_kst
from tests.test_web_support import english, error_summary, h1, title

# Every signature here is made once with the CA keys in files and once in a PKCS#11 token.
pytestmark = pytest.mark.both_backends

NEW_PASSWORD = "Green#leaf73y"


@pytest.fixture
def issued(demo):
    result = issuance.issue_certificate(demo["person"], "personal-banking", idn=RRN,
                                        actor="test", password=PASSWORD, offer_downloads=False)
    return result.certificate, {kind: content for kind, _n, _m, content in result.files}


def signed_in_at(web, demo, cert, days_before: int, hour: int = 10):
    """Move to `hour`:00 KST `days_before` the expiry day and pass identity verification."""
    set_kst(expiry(cert) - dt.timedelta(days=days_before), hour)
    english(web)
    verify_by_sms(web, demo["person"])
    return web


def log_in_with_files(web, files, kind="npki", password=PASSWORD):
    web.get("/renew/certificate")
    web.post("/renew/certificate", {"way": "files"})
    name = "NPKI.zip" if kind == "npki" else "mine.p12"
    return web.post("/renew/certificate/files",
                    {"files": (io.BytesIO(files[kind]), name), "password": password},
                    content_type="multipart/form-data")


def fetch_all(web, response) -> dict:
    """{filename: bytes} of every link on the done page, fetched as the customer would."""
    files = {}
    links = re.findall(r'<a href="(/download/[^"]+)" download="([^"]+)"',
                       response.get_data(as_text=True))
    for url, name in links:
        got = web.get(url)
        assert got.status_code == 200, name
        files[name] = got.get_data()
    return files


def test_same_key_renewal_with_the_npki_folder_gives_a_new_folder_and_p12(web, demo, issued):
    cert, files = issued
    signed_in_at(web, demo, cert, days_before=20)
    response = log_in_with_files(web, files)
    assert response.request.path == "/renew/key", h1(response)
    assert h1(response) == "Do you want a new key?"
    response = web.post("/renew/key", {"key": "same"})
    assert response.request.path == "/renew/check"
    page = response.get_data(as_text=True)
    new_end = renewal.renewal_end(cert)
    assert f"{new_end + dt.timedelta(hours=9):%Y}" in page and "The key you have" in page
    response = web.post("/renew/check", {})
    assert response.request.path == "/renew/done" and h1(response) == "Your certificate is renewed"
    assert f"valid until {new_end + dt.timedelta(hours=9):%B %-d, %Y}, 11:59:59 PM Korea time" \
        in text(response)
    got = fetch_all(web, response)
    new = Certificate.get(Certificate.replaced_by.is_null() & (Certificate.id != cert.id))
    assert set(got) == {"NPKI.zip", f"{new.serial}.p12", f"{new.serial}.crt", "chain.pem"}
    with zipfile.ZipFile(io.BytesIO(got["NPKI.zip"])) as archive, \
            zipfile.ZipFile(io.BytesIO(files["npki"])) as old_archive:
        assert archive.namelist() == old_archive.namelist()          # the same folder
        key_name = next(n for n in archive.namelist() if n.endswith("signPri.key"))
        assert archive.read(key_name) == old_archive.read(key_name)  # their own key file
        assert archive.read(key_name.replace("signPri.key", "signCert.der")) == bytes(new.der)
    _key, p12_cert, _chain = pkcs12.read_pkcs12(got[f"{new.serial}.p12"], PASSWORD)
    assert p12_cert.serial_number == int(new.serial, 16)
    old = Certificate.get_by_id(cert.id)
    assert old.status == "valid" and old.replaced_by_id == new.id
    my = web.get("/my/").get_data(as_text=True)
    assert "Renewed" in my and f'href="#cert-{new.serial}"' in my
    # Renewing the old one again: already renewed, with the successor's serial.
    response = log_in_with_files(web, files)
    assert response.status_code == 409
    assert h1(response) == "This certificate is already renewed" and new.serial in response.get_data(as_text=True)


def test_new_key_renewal_asks_for_a_password_and_gives_new_files(web, demo, issued):
    cert, files = issued
    signed_in_at(web, demo, cert, days_before=1)
    log_in_with_files(web, files, kind="p12")
    web.post("/renew/key", {"key": "new"})
    response = web.post("/renew/password", {"password": "short", "password_again": "short"})
    assert response.status_code == 400 and error_summary(response)[0][0] == "password"
    response = web.post("/renew/password", {"password": NEW_PASSWORD,
                                            "password_again": NEW_PASSWORD})
    assert response.request.path == "/renew/check"
    response = web.post("/renew/check", {})
    got = fetch_all(web, response)
    new = Certificate.get(Certificate.id != cert.id)
    pkcs12.read_pkcs12(got[f"{new.serial}.p12"], NEW_PASSWORD)
    with zipfile.ZipFile(io.BytesIO(got["NPKI.zip"])) as archive:
        signpri = next(archive.read(n) for n in archive.namelist() if n.endswith("signPri.key"))
    key, random_num = npki.read_private_key(signpri, NEW_PASSWORD)
    assert npki.compute_vid(RRN, random_num) == npki.read_identify_data(
        pkcs12.read_pkcs12(got[f"{new.serial}.p12"], NEW_PASSWORD)[1])[1]


def test_same_key_renewal_after_a_challenge_login_gives_the_certificate_alone(web, demo, issued):
    cert, files = issued
    signed_in_at(web, demo, cert, days_before=5)
    web.get("/renew/certificate")
    response = web.post("/renew/certificate", {"way": "signature"})
    challenge = re.search(r'<pre class="command" id="challenge">([^<]+)</pre>',
                          response.get_data(as_text=True)).group(1)
    key, _cert, _chain = pkcs12.read_pkcs12(files["p12"], PASSWORD)
    signature = key.sign(challenge.encode(), padding.PKCS1v15(), hashes.SHA256())
    response = web.post("/renew/certificate/signature",
                        {"signature": base64.b64encode(signature).decode()})
    assert response.request.path == "/renew/key"
    assert "You get the new certificate only" in response.get_data(as_text=True)
    web.post("/renew/key", {"key": "same"})
    response = web.post("/renew/check", {})
    got = fetch_all(web, response)
    new = Certificate.get(Certificate.id != cert.id)
    assert set(got) == {f"{new.serial}.crt", "chain.pem"}
    assert "in place of the old signCert.der" in response.get_data(as_text=True)
    spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    from cryptography import x509
    assert x509.load_der_x509_certificate(got[f"{new.serial}.crt"]).public_key().public_bytes(
        *spki) == key.public_key().public_bytes(*spki)


@pytest.mark.parametrize("days_before, hour, heading, fragment", [
    (31, 23, "It is too early to renew this certificate", "You can renew this certificate from"),
    (-1, 0, "This certificate has expired", "Get a new certificate"),
])
def test_outside_the_window_the_page_says_why_and_what_next(web, demo, issued, days_before,
                                                          hour, heading, fragment):
    cert, files = issued
    signed_in_at(web, demo, cert, days_before=days_before, hour=hour)
    response = log_in_with_files(web, files)
    assert response.status_code == 409
    assert h1(response) == heading and title(response).startswith(heading)
    assert fragment in response.get_data(as_text=True)
    if days_before == 31:
        opens = expiry(cert) - dt.timedelta(days=30)
        assert opens.strftime("%B %-d, %Y") in response.get_data(as_text=True)
    else:
        assert "/issue/type?type=personal-banking" in response.get_data(as_text=True)
    assert Certificate.select().count() == 1


def test_the_window_edges_through_the_pages(web, demo, issued):
    cert, files = issued
    signed_in_at(web, demo, cert, days_before=30, hour=0)
    assert log_in_with_files(web, files).request.path == "/renew/key"
    set_kst(expiry(cert), 23, 50)                               # the expiry day, in KST
    verify_by_sms(web, demo["person"])
    assert log_in_with_files(web, files).request.path == "/renew/key"


@pytest.mark.parametrize("change, heading, link", [
    (lambda c: status.revoke_certificate(c, "key-compromise", actor="t"),
     "This certificate is revoked", "/issue/type?type=personal-banking"),
    (lambda c: status.suspend_certificate(c, actor="t"),
     "This certificate is suspended", "/resume/"),
])
def test_a_revoked_or_suspended_certificate_gets_its_own_page(web, demo, issued, change,
                                                             heading, link):
    cert, files = issued
    signed_in_at(web, demo, cert, days_before=10)
    change(cert)
    response = log_in_with_files(web, files)
    assert response.status_code == 409 and h1(response) == heading
    assert link in response.get_data(as_text=True)


def test_the_later_steps_need_the_certificate_login_first(web, demo, issued):
    cert, _files = issued
    signed_in_at(web, demo, cert, days_before=10)
    for path in ("/renew/key", "/renew/password", "/renew/check", "/renew/automatic"):
        assert web.get(path, follow_redirects=True).request.path == "/renew/certificate", path
    assert web.get("/renew/done", follow_redirects=True).request.path == "/my/"


def test_a_wrong_password_gets_a_message_and_no_renewal(web, demo, issued):
    cert, files = issued
    signed_in_at(web, demo, cert, days_before=10)
    response = log_in_with_files(web, files, password="Wrong!pass1x")
    assert response.status_code == 400 and error_summary(response)[0][0] == "password"
    response = web.post("/renew/key", {"key": "same"})
    assert response.request.path == "/renew/certificate"


def test_a_double_submit_renews_once(web, demo, issued):
    """The second press carries the session the page had before the first one answered
    (as a browser does when the second leaves after the first has renewed): it is told
    the certificate is renewed. Presses closer together:
    test_a_second_press_while_the_first_is_signing_goes_to_the_done_page."""
    cert, files = issued
    signed_in_at(web, demo, cert, days_before=10)
    log_in_with_files(web, files)
    web.post("/renew/key", {"key": "same"})
    token, before = web.token, web.client.get_cookie("cc_session").value
    first = web.post("/renew/check", {})
    assert first.request.path == "/renew/done"
    web.token = token
    web.client.set_cookie("cc_session", before)
    second = web.post("/renew/check", {})
    new = Certificate.get(Certificate.id != cert.id)
    assert second.status_code == 409 and h1(second) == "This certificate is already renewed"
    assert new.serial in text(second)
    assert Certificate.select().count() == 2
    assert AuditEvent.select().where(AuditEvent.action == "certificate.renew").count() == 1


def totp_code(secret):
    return pyotp.TOTP(secret).at(clock.timestamp())


def test_turning_automatic_renewal_on_needs_a_code(web, demo, issued):
    cert, _files = issued
    english(web)
    verify_by_sms(web, demo["person"])
    my = web.get("/my/").get_data(as_text=True)
    assert f"/my/certificates/{cert.serial}/auto-renew" in my
    response = web.post(f"/my/certificates/{cert.serial}/auto-renew", {})
    assert response.status_code == 400 and error_summary(response)[0][0] == "lead_days"
    response = web.post(f"/my/certificates/{cert.serial}/auto-renew", {"lead_days": "14"})
    assert response.request.path.endswith("/auto-renew/code")
    assert "authenticator app" in response.get_data(as_text=True)
    response = web.post(f"/my/certificates/{cert.serial}/auto-renew/code", {"code": "000000"})
    assert response.status_code == 400
    assert Certificate.get_by_id(cert.id).auto_renew_days is None
    move_clock(seconds=31)
    response = web.post(f"/my/certificates/{cert.serial}/auto-renew/code",
                        {"code": totp_code(demo["totp_secret"])})
    assert response.request.path == "/my/"
    assert "Automatic renewal is on" in response.get_data(as_text=True)
    assert Certificate.get_by_id(cert.id).auto_renew_days == 14
    event = AuditEvent.select().where(AuditEvent.action == "certificate.auto_renew").get()
    assert event.actor == "customer:P0000001"


def test_a_manual_renewal_while_automatic_renewal_is_on_offers_the_choice(web, demo, issued):
    cert, files = issued
    renewal.set_auto_renewal(cert, 7, "test")
    signed_in_at(web, demo, cert, days_before=20)
    response = log_in_with_files(web, files)
    assert response.request.path == "/renew/automatic"
    due = expiry(cert) - dt.timedelta(days=7)
    assert due.strftime("%b %-d, %Y") in response.get_data(as_text=True)
    response = web.post("/renew/automatic", {"choice": "keep"})
    assert response.request.path == "/my/"
    assert "Automatic renewal stays on" in response.get_data(as_text=True)
    assert Certificate.select().count() == 1
    log_in_with_files(web, files)
    web.post("/renew/automatic", {"choice": "now"})
    response = web.post("/renew/key", {"key": "same"})
    assert response.request.path == "/renew/check"
    assert "Automatic renewal will be turned off" in text(response)
    response = web.post("/renew/check", {})
    assert response.request.path == "/renew/done"
    new = Certificate.get(Certificate.id != cert.id)
    assert new.auto_renew_days is None and Certificate.get_by_id(cert.id).auto_renew_days is None


def test_a_certificate_replaced_by_a_reissue_gets_its_own_page(web, demo, issued):
    cert, files = issued
    reissued = issuance.issue_certificate(demo["person"], "personal-banking", idn=RRN,
                                          actor="test", password=PASSWORD,
                                          offer_downloads=False).certificate
    signed_in_at(web, demo, cert, days_before=10)
    response = log_in_with_files(web, files)
    assert response.status_code == 409 and h1(response) == "This certificate was replaced"
    assert reissued.serial in text(response)
    assert "/issue/type" not in response.get_data(as_text=True)    # not "get a new one" again


def test_a_second_press_while_the_first_is_signing_renews_nothing_more(app, web, demo, issued,
                                                                         monkeypatch):
    """Both presses pass the checks before either renews: the certificate's renewal claim
    stops the second before the CA key signs anything, and it says what is happening."""
    cert, files = issued
    signed_in_at(web, demo, cert, days_before=10)
    log_in_with_files(web, files)
    web.post("/renew/key", {"key": "same"})
    other_tab = app.test_client()
    other_tab.set_cookie("cc_session", web.client.get_cookie("cc_session").value)
    token, answers = web.token, {}
    sign = issuance.sign_end_entity

    def second_press_arrives(*args, **kwargs):
        press = threading.Thread(target=lambda: answers.update(
            second=other_tab.post("/renew/check", data={"csrf_token": token})))
        press.start()
        press.join(timeout=60)
        return sign(*args, **kwargs)
    monkeypatch.setattr(issuance, "sign_end_entity", second_press_arrives)
    first = web.post("/renew/check", {})
    assert first.request.path == "/renew/done"
    second = answers["second"]
    assert second.status_code == 409
    assert "이 인증서는 지금 갱신되고 있습니다" in second.get_data(as_text=True)
    assert Certificate.select().count() == 2
