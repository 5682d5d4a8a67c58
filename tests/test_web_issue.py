"""Issuing through the web pages: personal issuance end to end, reissue, the CSR path and
its bad inputs, and a confirm button pressed twice."""
import io
import re
import zipfile

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from models import Certificate, Download
from pki import npki
from services import ca_store, issuance
from tests.conftest import BUSINESS, sms_code, text
from tests.test_web_support import (
    PASSWORD,
    agree_and_choose,
    certificate_count,
    download_links,
    english,
    error_summary,
    field_error,
    h1,
    issue_personal,
    key_and_password,
    title,
    verify_person_by_sms,
)

# Every signature here is made once with the CA keys in files and once in a PKCS#11 token.
pytestmark = pytest.mark.both_backends

SERIAL = re.compile(r"\b[0-9a-f]{40}\b")


def _public_der(key) -> bytes:
    return key.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def test_personal_issuance_end_to_end(web, demo):
    english(web)
    person = demo["person"]

    start = web.get("/issue/")
    assert start.status_code == 200
    assert h1(start) == "Get or reissue a certificate"
    assert 'href="/issue/terms"' in start.get_data(as_text=True)

    # Not verified yet: the terms page sends the person to identity verification first.
    terms = web.get("/issue/terms")
    assert terms.status_code == 303
    assert terms.headers["Location"].endswith("/verify/")

    identity = web.get("/verify/")
    assert identity.status_code == 200 and h1(identity) == "Confirm your identity"
    method = web.post("/verify/", {"name": "홍길동", "rrn": "900101-1234567",
                                   "account": "110-123-456789", "pin": "1234"})
    # The demo person has an authenticator app, so they are asked how to get the code.
    assert method.request.path == "/verify/method"
    assert h1(method) == "How do you want to get your code?"
    code = web.post("/verify/method", {"method": "sms"})
    assert code.request.path == "/verify/code" and h1(code) == "Enter the code we sent you"
    assert "ending 0001" in text(code)
    terms = web.post("/verify/code", {"code": sms_code(person)})
    assert terms.request.path == "/issue/terms", "back where the flow started"
    assert terms.status_code == 200 and h1(terms) == "Terms of use"

    kind = web.post("/issue/terms", {"agree": "y"})
    assert kind.request.path == "/issue/type" and h1(kind) == "Which certificate do you need?"
    html = kind.get_data(as_text=True)
    assert 'value="personal-banking"' in html and 'value="business-banking"' not in html

    key = web.post("/issue/type", {"cert_type": "personal-banking"})
    assert key.request.path == "/issue/key" and h1(key) == "How should the key be made?"
    password = web.post("/issue/key", {"key": "generate"})
    assert password.request.path == "/issue/password"
    assert h1(password) == "Choose a certificate password"
    check = web.post("/issue/password", {"password": PASSWORD, "password_again": PASSWORD})
    assert check.request.path == "/issue/check" and h1(check) == "Check your answers"
    assert "Personal: banking, credit card and insurance" in text(check)
    assert "Free" in text(check)
    assert "will be revoked" not in text(check)
    assert PASSWORD not in check.get_data(as_text=True)
    assert certificate_count() == 0, "nothing is issued before the person confirms"

    done = web.post("/issue/check", {})
    assert done.status_code == 200 and done.request.path == "/issue/done"
    assert h1(done) == "Your certificate is ready"
    cert_row = Certificate.get()
    assert cert_row.serial in text(done) and SERIAL.fullmatch(cert_row.serial)
    links = download_links(done)
    assert len(links) == 4

    files = {}
    for link in links:
        response = web.client.get(link)
        assert response.status_code == 200, link
        assert response.headers["Content-Disposition"].startswith("attachment")
        assert "no-store" in response.headers["Cache-Control"]
        files[response.headers["Content-Disposition"].split("filename=")[1].strip('"')] = (
            response.data)
    assert set(files) == {"NPKI.zip", f"{cert_row.serial}.p12", f"{cert_row.serial}.crt",
                          "chain.pem"}

    cert = x509.load_der_x509_certificate(files[f"{cert_row.serial}.crt"])
    assert cert.serial_number == int(cert_row.serial, 16)
    assert cert.public_bytes(serialization.Encoding.DER) == bytes(cert_row.der)

    with zipfile.ZipFile(io.BytesIO(files["NPKI.zip"])) as archive:
        folder = f"NPKI/CertCenter/USER/{npki.subject_folder_name(cert)}"
        assert sorted(archive.namelist()) == [f"{folder}/signCert.der", f"{folder}/signPri.key"]
        assert archive.read(f"{folder}/signCert.der") == bytes(cert_row.der)
        npki_key, random_num = npki.read_private_key(archive.read(f"{folder}/signPri.key"),
                                                     PASSWORD)
    assert random_num is not None and len(random_num) == 20
    assert _public_der(npki_key.public_key()) == _public_der(cert.public_key())

    bundle = pkcs12.load_pkcs12(files[f"{cert_row.serial}.p12"], PASSWORD.encode())
    assert bundle.key is not None and bundle.cert is not None
    assert bundle.cert.certificate == cert
    assert _public_der(bundle.key.public_key()) == _public_der(cert.public_key())
    assert len(bundle.additional_certs) == 2
    with pytest.raises(ValueError):
        pkcs12.load_pkcs12(files[f"{cert_row.serial}.p12"], b"Wrong!pass42")

    chain = x509.load_pem_x509_certificates(files["chain.pem"])
    assert chain == ca_store.chain()
    assert cert.issuer == chain[0].subject and chain[0].issuer == chain[1].subject

    # Each link works once.
    for link in links:
        again = web.client.get(link)
        assert again.status_code == 410, link
        assert h1(again) == "This link no longer works"
        assert "already used" in text(again)
    assert all(row.content is None for row in Download.select())

    mine = web.get("/my/")
    assert mine.status_code == 200 and h1(mine) == "My certificates"
    assert cert_row.serial in text(mine) and "Valid" in text(mine)
    days = int(re.search(r"Days left .*?(\d+) days", text(mine)).group(1))
    assert 360 <= days <= 366


def test_reissue_warns_on_check_your_answers_and_revokes_the_old_certificate(web, demo):
    english(web)
    verify_person_by_sms(web, demo["person"])
    issue_personal(web)
    first = Certificate.get()

    key = agree_and_choose(web, "personal-banking")
    assert key.request.path == "/issue/key"
    assert "current one will be revoked" in text(key)
    check = key_and_password(web)
    warning = text(check)
    assert f"Your current certificate (serial {first.serial}) will be revoked" in warning
    expiry = re.search(r"The new certificate ends on (.+?), like the current one", warning)
    assert expiry, warning
    assert 'Reissue the certificate' in warning

    done = web.post("/issue/check", {})
    assert done.request.path == "/issue/done"
    assert h1(done) == "Your certificate was reissued"
    assert "Your previous certificate no longer works" in text(done)

    old, new = Certificate.get_by_id(first.id), Certificate.get(Certificate.id != first.id)
    assert old.status == "revoked" and old.revocation_reason == "superseded"
    assert new.status == "valid" and new.not_after == old.not_after
    assert old.not_after.strftime("%B") in expiry.group(1)     # "the same expiry date"

    mine = text(web.get("/my/"))
    assert new.serial in mine and old.serial in mine
    revoked_card = mine[mine.index(old.serial) - 200:mine.index(old.serial)]
    assert "Revoked" in revoked_card
    assert "replaced by a reissued certificate" in mine


def test_pressing_confirm_twice_issues_one_certificate(web, demo):
    verify_person_by_sms(web, demo["person"])
    agree_and_choose(web)
    key_and_password(web)
    cookie = web.client.get_cookie("cc_session").value     # the browser's cookie at the click

    first = web.post("/issue/check", {}, follow=False)
    assert first.status_code == 303 and first.headers["Location"].endswith("/issue/done")
    web.client.set_cookie("cc_session", cookie)          # the second click carries it again
    second = web.post("/issue/check", {}, follow=False)
    assert second.status_code == 303
    assert certificate_count() == 1
    assert Download.select().count() == 4
    landing = web.client.get(second.headers["Location"], follow_redirects=True)
    assert landing.status_code == 200


def test_a_password_whose_seal_no_longer_opens_is_asked_again_not_a_500(web, demo):
    """The password waits in the session sealed under the instance key; if that seal no
    longer opens (the key was changed meanwhile), the confirm button asks for it again."""
    verify_person_by_sms(web, demo["person"])
    agree_and_choose(web)
    key_and_password(web)
    with web.client.session_transaction() as kept:
        kept["issue"] = {**kept["issue"], "password": "sealed-under-another-key"}
    answer = web.post("/issue/check", {}, follow=False)
    assert answer.status_code == 303 and answer.headers["Location"].endswith("/issue/password")
    assert certificate_count() == 0


# -- the CSR path ------------------------------------------------------------------------

def _csr(key, name="CSR test") -> x509.CertificateSigningRequest:
    return (x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .sign(key, hashes.SHA256()))


@pytest.fixture
def at_key_step(web, demo):
    english(web)
    verify_person_by_sms(web, demo["person"])
    response = agree_and_choose(web)
    assert response.request.path == "/issue/key"
    response = web.post("/issue/key", {"key": "csr"})
    assert response.request.path == "/issue/csr"
    assert h1(response) == "Upload your certificate signing request"
    return web


def _upload(web, data: bytes, filename="request.csr", **kwargs):
    return web.post("/issue/csr", {"csr": (io.BytesIO(data), filename)},
                    content_type="multipart/form-data", **kwargs)


def test_a_valid_ecdsa_csr_gets_only_the_certificate_and_chain(at_key_step):
    web = at_key_step
    key = ec.generate_private_key(ec.SECP256R1())
    check = _upload(web, _csr(key).public_bytes(serialization.Encoding.PEM))
    assert check.request.path == "/issue/check", (h1(check), error_summary(check))
    assert "From your signing request" in text(check) and "Not needed" in text(check)
    done = web.post("/issue/check", {})
    assert done.request.path == "/issue/done" and h1(done) == "Your certificate is ready"
    links = download_links(done)
    assert len(links) == 2
    kinds = {}
    for link in links:
        response = web.client.get(link)
        assert response.status_code == 200
        kinds[response.mimetype] = response.data
    assert set(kinds) == {"application/pkix-cert", "application/x-pem-file"}
    cert = x509.load_der_x509_certificate(kinds["application/pkix-cert"])
    assert _public_der(cert.public_key()) == _public_der(key.public_key())
    assert len(x509.load_pem_x509_certificates(kinds["application/x-pem-file"])) == 2
    assert Certificate.get().key_generated_here is False


def _bad_signature_csr() -> bytes:
    der = bytearray(_csr(rsa.generate_private_key(public_exponent=65537, key_size=2048))
                    .public_bytes(serialization.Encoding.DER))
    der[-1] ^= 0x01                        # the last byte is in the signature BIT STRING
    return bytes(der)


def _weak_rsa_csr() -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    return _csr(key).public_bytes(serialization.Encoding.PEM)


@pytest.mark.parametrize("make, message", [
    (_bad_signature_csr, "The request's signature does not match its key"),
    (_weak_rsa_csr, "The request's key is too weak"),
    (lambda: b"\x00\x01garbage, not a CSR\xff" * 10, "The file is not a certificate signing request"),
    (lambda: b"-----BEGIN CERTIFICATE REQUEST-----\nnot base64\n-----END CERTIFICATE REQUEST-----\n",
     "The file is not a certificate signing request"),
    (lambda: b"0" * (20 * 1024), "The file is too large. A signing request is under 16 KB"),
], ids=["bad-signature", "rsa-1024", "garbage", "bad-pem", "over-16k"])
def test_a_bad_csr_gets_a_clear_message_and_nothing_is_stored(at_key_step, make, message):
    response = _upload(at_key_step, make())
    assert response.status_code == 400
    assert response.request.path == "/issue/csr"
    assert title(response).startswith("Error:")
    assert error_summary(response) and error_summary(response)[0][0] == "csr"
    assert message in field_error(response, "csr")
    assert certificate_count() == 0
    # The bad file did not become the flow's answer: check-your-answers sends them back.
    assert at_key_step.get("/issue/check").status_code == 303


def test_an_upload_over_256_kb_gets_a_413_page(at_key_step):
    response = _upload(at_key_step, b"A" * (300 * 1024))
    assert response.status_code == 413
    assert h1(response) == "File too large"
    assert "Upload a file under 256 KB" in text(response)
    assert certificate_count() == 0


def test_no_csr_file_chosen_is_an_error_on_the_field(at_key_step):
    response = at_key_step.post("/issue/csr", {}, content_type="multipart/form-data")
    assert response.status_code == 400
    assert error_summary(response) == [("csr", "Select a certificate signing request file")]


def test_changing_from_csr_to_a_generated_key_asks_for_the_password(at_key_step):
    web = at_key_step
    key = ec.generate_private_key(ec.SECP256R1())
    check = _upload(web, _csr(key).public_bytes(serialization.Encoding.PEM))
    assert check.request.path == "/issue/check"
    # "Change" the key: make it here instead, then come back without choosing a password.
    web.get("/issue/key")
    password_page = web.post("/issue/key", {"key": "generate"})
    assert password_page.request.path == "/issue/password"
    response = web.get("/issue/check")
    assert response.status_code == 303, (
        "no password yet: check-your-answers must not offer to issue; it said: "
        + text(response)[:300])
    assert response.headers["Location"].endswith(("/issue/password", "/issue/key"))


def test_changing_from_a_generated_key_to_csr_asks_for_the_file(at_key_step):
    web = at_key_step
    web.post("/issue/key", {"key": "generate"})
    check = web.post("/issue/password", {"password": PASSWORD, "password_again": PASSWORD})
    assert check.request.path == "/issue/check"
    web.get("/issue/key")
    upload_page = web.post("/issue/key", {"key": "csr"})
    assert upload_page.request.path == "/issue/csr"
    response = web.get("/issue/check")
    assert response.status_code == 303, (
        "no CSR yet: check-your-answers must not offer to issue; it said: "
        + text(response)[:300])
    assert response.headers["Location"].endswith(("/issue/csr", "/issue/key"))


def test_an_oversized_htmx_upload_gets_the_413_fragment(at_key_step):
    response = _upload(at_key_step, b"A" * (300 * 1024), headers={"HX-Request": "true"})
    assert response.status_code == 413
    html = response.get_data(as_text=True)
    assert "<html" not in html and '<main id="main"' in html
    assert h1(response) == "File too large"


def test_my_certificates_serves_only_my_own_certificate_files(web, demo):
    key = ec.generate_private_key(ec.SECP256R1())
    issued = issuance.issue_certificate(
        demo["person"], "personal-banking", idn="900101-1234567", actor="test",
        csr_der=_csr(key).public_bytes(serialization.Encoding.DER))
    serial = issued.certificate.serial

    verify_person_by_sms(web, demo["person"])
    own = web.client.get(f"/my/certificates/{serial}.crt")
    assert own.status_code == 200 and own.mimetype == "application/pkix-cert"
    assert x509.load_der_x509_certificate(own.data).serial_number == int(serial, 16)
    chain = web.client.get("/my/chain.pem")
    assert len(x509.load_pem_x509_certificates(chain.data)) == 2

    web.post("/verify/signout", {})
    web.get("/verify/")
    web.post("/verify/", BUSINESS)
    web.post("/verify/code", {"code": sms_code(demo["business"])})
    assert web.get("/my/").status_code == 200
    assert web.client.get(f"/my/certificates/{serial}.crt").status_code == 404
