"""Registering another institution's certificate: trust anchors the tests create, acting as
"another bank"; the checks (chain, validity, key, VID, the customer's own RRN) each with its
own message; My certificates, removal, and the pages under axe-core."""
import io
import os
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from models import AuditEvent, RegisteredCertificate
from pki import files as pki_files
from pki import npki
from pki.profile import IDENTIFY_DATA_OID
from services import audit, clock, issuance, limits, registration, trust
from services.errors import DomainError
from tests.conftest import BUSINESS, VECTORS, text, verify_by_sms

PW = "Other!bank42x"
PERSON_RRN = "9001011234567"
REPRESENTATIVE_RRN = "8002022345678"
CLIENT = "10.0.0.7"


@pytest.fixture(scope="module")
def keys():
    """RSA keys are slow to make: one for the other bank's root, a few for certificates."""
    return [rsa.generate_private_key(65537, 2048) for _ in range(3)]


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "KR"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "OtherBank"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


class OtherBank:
    """A throwaway root CA that issues NPKI-style certificates, as another bank would."""

    def __init__(self, key, cn="OtherBank Root CA"):
        self.key = key
        now = datetime.now(UTC)
        self.cert = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(_name(cn))
                     .public_key(key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - timedelta(days=3650))
                     .not_valid_after(now + timedelta(days=3650))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                     .add_extension(x509.KeyUsage(False, False, False, False, False, True, True,
                                                  False, False), critical=True)
                     .sign(key, hashes.SHA256()))

    def pem(self) -> bytes:
        return self.cert.public_bytes(Encoding.PEM)

    def issue(self, key, rrn=PERSON_RRN, random_num=None, start=-1, days=365, vid=True):
        """(certificate, randomNum) for `key`, valid from `start` days from now for `days`."""
        random_num = random_num or os.urandom(20)
        now = datetime.now(UTC)
        builder = (x509.CertificateBuilder()
                   .subject_name(x509.Name([
                       x509.NameAttribute(NameOID.COUNTRY_NAME, "KR"),
                       x509.NameAttribute(NameOID.ORGANIZATION_NAME, "OtherBank"),
                       x509.NameAttribute(NameOID.COMMON_NAME, "홍길동()0001")]))
                   .issuer_name(self.cert.subject).public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now + timedelta(days=start))
                   .not_valid_after(now + timedelta(days=start + days))
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True))
        if vid:
            data = npki.identify_data("홍길동", npki.compute_vid(rrn, random_num))
            builder = builder.add_extension(x509.SubjectAlternativeName(
                [x509.OtherName(IDENTIFY_DATA_OID, data)]), critical=False)
        return builder.sign(self.key, hashes.SHA256()), random_num


def npki_files(cert, key, random_num, password=PW):
    return [("NPKI.zip", npki.npki_zip(cert, npki.encrypt_private_key(key, password, random_num),
                                       "OtherBank"))]


@pytest.fixture
def bank(app, keys):
    """The other bank, trusted with `trust add` as an operator would."""
    other = OtherBank(keys[0])
    path = app.instance_path + "/otherbank-root.pem"
    with open(path, "wb") as handle:
        handle.write(other.pem())
    result = app.test_cli_runner().invoke(args=["trust", "add", path, "--operator", "kim"])
    assert result.exit_code == 0, result.output
    return other


def refused(customer, uploads, rrn=PERSON_RRN, password=PW) -> DomainError:
    with pytest.raises(DomainError) as error:
        registration.register(customer, uploads, password, rrn, CLIENT)
    return error.value


# -- trust anchors ---------------------------------------------------------------------------

def test_trust_add_is_idempotent_audited_and_listed(app, bank):
    runner = app.test_cli_runner()
    fingerprint = trust.fingerprint(bank.cert)
    assert fingerprint in {trust.fingerprint(cert) for cert in trust.anchors()}
    again = runner.invoke(args=["trust", "add", app.instance_path + "/otherbank-root.pem"])
    assert again.exit_code == 0 and "Already trusted" in again.output
    assert AuditEvent.select().where(AuditEvent.action == "trust.add").count() == 1
    listed = runner.invoke(args=["trust", "list"])
    assert listed.exit_code == 0
    assert "CN=OtherBank Root CA" in listed.output and fingerprint in listed.output
    assert "valid " in listed.output
    assert [trust.fingerprint(a) for a in trust.anchors()] == [fingerprint]


def test_trust_add_refuses_a_certificate_that_is_not_a_ca(app, bank, keys, tmp_path):
    leaf, _ = bank.issue(keys[1])
    (tmp_path / "leaf.der").write_bytes(leaf.public_bytes(Encoding.DER))
    (tmp_path / "junk.pem").write_bytes(b"not a certificate")
    for name in ("leaf.der", "junk.pem"):
        result = app.test_cli_runner().invoke(args=["trust", "add", str(tmp_path / name)])
        assert result.exit_code != 0 and "Traceback" not in result.output
    assert len(trust.anchors()) == 1


# -- registering -----------------------------------------------------------------------------

def test_a_certificate_whose_vid_matches_registers_and_is_audited(demo, bank, keys):
    cert, random_num = bank.issue(keys[1])
    row = registration.register(demo["person"], npki_files(cert, keys[1], random_num), PW,
                                "900101-1234567", CLIENT)
    assert row.serial == f"{cert.serial_number:040x}" and row.issuer == cert.issuer.rfc4514_string()
    assert bytes(row.der) == cert.public_bytes(Encoding.DER)
    assert registration.registered_of(demo["person"]) == [row]
    assert registration.names(row) == {"name": "홍길동()0001", "issuer": "OtherBank"}
    event = AuditEvent.select().where(AuditEvent.action == "registration.add").get()
    assert event.actor == "customer:P0000001" and event.target == str(row.id)
    assert audit.verify_chain() is None


def test_signcert_and_signpri_as_separate_files_register_too(demo, bank, keys):
    cert, random_num = bank.issue(keys[1])
    uploads = [("signCert.der", cert.public_bytes(Encoding.DER)),
               ("signPri.key", npki.encrypt_private_key(keys[1], PW, random_num))]
    assert registration.register(demo["person"], uploads, PW, PERSON_RRN, CLIENT).id


def test_a_certificate_made_for_another_rrn_is_refused_as_a_vid_mismatch(demo, bank, keys):
    # The business representative's certificate, brought by the person with their own RRN.
    cert, random_num = bank.issue(keys[1], rrn=REPRESENTATIVE_RRN)
    error = refused(demo["person"], npki_files(cert, keys[1], random_num))
    assert error.code == "register_vid_mismatch" and error.field == "files"
    # The representative themself can register it.
    assert registration.register(demo["business"], npki_files(cert, keys[1], random_num), PW,
                                 REPRESENTATIVE_RRN, CLIENT).id


def test_only_the_customers_own_rrn_is_taken(demo, bank, keys):
    cert, random_num = bank.issue(keys[1], rrn=REPRESENTATIVE_RRN)
    error = refused(demo["person"], npki_files(cert, keys[1], random_num), rrn=REPRESENTATIVE_RRN)
    assert error.code == "identity_mismatch" and error.field == "rrn"
    uploads = npki_files(cert, keys[1], random_num)
    assert refused(demo["person"], uploads, rrn="12").code == "rrn_format"


def test_a_certificate_without_a_vid_is_refused(demo, bank, keys):
    cert, random_num = bank.issue(keys[1], vid=False)
    assert refused(demo["person"], npki_files(cert, keys[1], random_num)).code == "register_no_vid"


def test_a_certificate_from_an_institution_not_trusted_is_refused(demo, keys):
    stranger = OtherBank(keys[0], cn="Stranger Root CA")      # never added with `trust add`
    cert, random_num = stranger.issue(keys[1])
    uploads = npki_files(cert, keys[1], random_num)
    assert refused(demo["person"], uploads).code == "register_untrusted"


def test_a_certificate_signed_by_another_key_under_a_trusted_name_is_refused(demo, bank, keys):
    impostor = OtherBank(keys[2])                              # same name, different key
    cert, random_num = impostor.issue(keys[1])
    uploads = npki_files(cert, keys[1], random_num)
    assert refused(demo["person"], uploads).code == "register_untrusted"


def test_one_intermediate_from_a_p12_is_followed_but_a_p12_needs_the_npki_files(demo, bank, keys):
    middle_key = keys[2]
    now = datetime.now(UTC)
    middle = (x509.CertificateBuilder().subject_name(_name("OtherBank Issuing CA"))
              .issuer_name(bank.cert.subject).public_key(middle_key.public_key())
              .serial_number(x509.random_serial_number())
              .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=900))
              .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
              .sign(bank.key, hashes.SHA256()))
    issuing = OtherBank.__new__(OtherBank)
    issuing.key, issuing.cert = middle_key, middle
    cert, random_num = issuing.issue(keys[1])
    # The NPKI files carry no chain, and the intermediate is not an anchor: it is missing.
    uploads = npki_files(cert, keys[1], random_num)
    assert refused(demo["person"], uploads).code == "register_intermediate_missing"
    # A .p12 brings the intermediate, so the chain holds; it has no randomNum, so no VID.
    p12 = pki_files.pkcs12(keys[1], cert, [middle], PW, "other")
    error = refused(demo["person"], [("cert.p12", p12)])
    assert error.code == "register_needs_npki"
    assert trust.path(cert, [middle], datetime.now(UTC)) == [cert, middle, bank.cert]


def test_a_p12_is_refused_with_an_explanation_that_the_npki_files_are_needed(app, demo, bank,
                                                                             keys):
    cert, _ = bank.issue(keys[1])
    error = refused(demo["person"], [("cert.p12", pki_files.pkcs12(keys[1], cert, [], PW, "x"))])
    assert error.code == "register_needs_npki"
    from views.messages import message_for
    with app.test_request_context(headers={"Accept-Language": "en"}):
        assert "signCert.der and signPri.key" in message_for(error)


def test_expired_and_not_yet_valid_certificates_are_refused(demo, bank, keys):
    old, random_num = bank.issue(keys[1], start=-400, days=365)
    assert refused(demo["person"], npki_files(old, keys[1], random_num)).code == "register_expired"
    later, random_num = bank.issue(keys[1], start=10)
    error = refused(demo["person"], npki_files(later, keys[1], random_num))
    assert error.code == "register_not_yet_valid"


def test_a_wrong_password_is_refused_and_limited(demo, bank, keys):
    cert, random_num = bank.issue(keys[1])
    uploads = npki_files(cert, keys[1], random_num)
    for _ in range(limits.TARGET_TRIES):
        error = refused(demo["person"], uploads, password="Wrong!pass1x")
        assert error.code == "password_wrong_for_files" and error.field == "password"
    blocked = refused(demo["person"], uploads)
    assert blocked.code == "certificate_blocked" and blocked.status == 429


def test_a_key_from_another_certificate_is_refused(demo, bank, keys):
    cert, random_num = bank.issue(keys[1])
    uploads = [("signCert.der", cert.public_bytes(Encoding.DER)),
               ("signPri.key", npki.encrypt_private_key(keys[2], PW, random_num))]
    assert refused(demo["person"], uploads).code == "key_mismatch"


def test_registering_the_same_certificate_twice_is_refused(demo, bank, keys):
    cert, random_num = bank.issue(keys[1])
    registration.register(demo["person"], npki_files(cert, keys[1], random_num), PW, PERSON_RRN,
                          CLIENT)
    error = refused(demo["person"], npki_files(cert, keys[1], random_num))
    assert error.code == "register_duplicate" and error.status == 409
    assert RegisteredCertificate.select().count() == 1


def test_one_of_our_own_certificates_is_not_registered(demo, bank):
    issued = issuance.issue_certificate(demo["person"], "personal-banking", idn=PERSON_RRN,
                                        actor="test", password=PW, offer_downloads=False)
    npki_zip = next(content for kind, _n, _m, content in issued.files if kind == "npki")
    assert refused(demo["person"], [("NPKI.zip", npki_zip)]).code == "register_is_ours"


def test_the_pypinksign_vector_is_refused_as_expired_and_untrusted(demo):
    folder = VECTORS / "pypinksign"
    uploads = [(name, (folder / name).read_bytes()) for name in ("signCert.der", "signPri.key")]
    password = (folder / "password.txt").read_text().strip()
    # Today it has expired (March 2020): that is reported first, as the one fact the customer
    # can act on.
    assert refused(demo["person"], uploads, password=password).code == "register_expired"
    # Back in its validity period it is still refused: yessign's test CA is no anchor of ours.
    clock.advance(datetime(2020, 3, 1) - clock.now())
    assert refused(demo["person"], uploads, password=password).code == "register_untrusted"


# -- removing --------------------------------------------------------------------------------

def test_removal_is_only_of_ones_own_and_audited(demo, bank, keys):
    cert, random_num = bank.issue(keys[1])
    row = registration.register(demo["person"], npki_files(cert, keys[1], random_num), PW,
                                PERSON_RRN, CLIENT)
    with pytest.raises(DomainError) as other:
        registration.remove(demo["business"], row.id, "customer:B0000001")
    assert other.value.code == "registration_not_found" and other.value.status == 404
    registration.remove(demo["person"], row.id, "customer:P0000001")
    assert registration.registered_of(demo["person"]) == []
    event = AuditEvent.select().where(AuditEvent.action == "registration.remove").get()
    assert event.actor == "customer:P0000001" and event.target == str(row.id)
    assert audit.verify_chain() is None


# -- the pages -------------------------------------------------------------------------------

def upload(web, uploads, rrn="900101-1234567", password=PW):
    return web.post("/register/files",
                    {"files": [(io.BytesIO(content), name) for name, content in uploads],
                     "password": password, "rrn": rrn},
                    content_type="multipart/form-data")


def test_through_the_pages_register_see_in_my_certificates_and_remove(web, demo, bank, keys):
    start = web.get("/register/")
    assert start.status_code == 200 and "signPri.key" in text(start)
    assert 'href="/register/"' in web.get("/").get_data(as_text=True)
    form = verify_by_sms(web, demo["person"], start="/register/files")
    assert form.request.path == "/register/files"
    html = form.get_data(as_text=True)
    assert 'enctype="multipart/form-data"' in html and 'inputmode="numeric"' in html
    assert 'id="rrn"' in html and 'autocomplete="off"' in html

    cert, random_num = bank.issue(keys[1])
    done = upload(web, npki_files(cert, keys[1], random_num))
    assert done.request.path == "/register/done" and done.status_code == 200
    assert "홍길동()0001" in text(done) and "OtherBank" in text(done)

    mine = web.get("/my/")
    page_text = text(mine)
    assert "CN=OtherBank Root CA" in page_text and f"{cert.serial_number:040x}" in page_text
    assert 'href="/register/"' in mine.get_data(as_text=True)
    row = RegisteredCertificate.get()
    # The button in My certificates asks first; nothing is removed yet.
    ask = web.post(f"/register/{row.id}/remove")
    assert ask.status_code == 200 and RegisteredCertificate.select().count() == 1
    assert "홍길동()0001" in text(ask)
    gone = web.post(f"/register/{row.id}/remove", {"confirm": "yes"})
    assert gone.request.path == "/my/" and RegisteredCertificate.select().count() == 0
    assert 'role="status"' in gone.get_data(as_text=True)
    assert web.get(f"/register/{row.id}/remove").status_code == 404


def test_the_upload_page_shows_each_refusal_by_its_field(web, demo, bank, keys):
    verify_by_sms(web, demo["person"], start="/register/files")
    cert, random_num = bank.issue(keys[1], rrn=REPRESENTATIVE_RRN)
    mismatch = upload(web, npki_files(cert, keys[1], random_num))
    assert mismatch.status_code == 400 and 'id="files-error"' in mismatch.get_data(as_text=True)
    wrong = upload(web, npki_files(cert, keys[1], random_num), password="Wrong!pass1x")
    assert wrong.status_code == 400 and 'id="password-error"' in wrong.get_data(as_text=True)
    other_rrn = upload(web, npki_files(cert, keys[1], random_num), rrn=BUSINESS["rrn"])
    assert 'id="rrn-error"' in other_rrn.get_data(as_text=True)
    empty = web.post("/register/files", {}, content_type="multipart/form-data")
    html = empty.get_data(as_text=True)
    assert empty.status_code == 400 and 'href="#files"' in html and 'href="#rrn"' in html
    assert RegisteredCertificate.select().count() == 0


def test_someone_elses_registration_cannot_be_removed_through_the_pages(app, web, demo, bank,
                                                                         keys):
    cert, random_num = bank.issue(keys[1], rrn=REPRESENTATIVE_RRN)
    row = registration.register(demo["business"], npki_files(cert, keys[1], random_num), PW,
                                REPRESENTATIVE_RRN, CLIENT)
    verify_by_sms(web, demo["person"], start="/my/")
    assert web.get(f"/register/{row.id}/remove").status_code == 404
    assert web.post(f"/register/{row.id}/remove", {"confirm": "yes"}).status_code == 404
    assert RegisteredCertificate.select().count() == 1


def test_the_registration_pages_and_an_error_pass_axe(chromium, live, demo, bank, keys, tmp_path):
    from tests.browser import assert_accessible, new_page, submit, verify_identity
    page = new_page(chromium, live, javascript=True)
    page.goto("/register/")
    assert_accessible(page, "registration start")
    page.goto("/register/files")
    verify_identity(page, demo["person"])
    page.wait_for_url("**/register/files")
    assert_accessible(page, "registration files")
    submit(page, True)
    page.wait_for_selector(".error-summary")
    assert_accessible(page, "registration files, nothing filled in")
    wrong, random_num = bank.issue(keys[1], rrn=REPRESENTATIVE_RRN)
    (tmp_path / "NPKI.zip").write_bytes(npki_files(wrong, keys[1], random_num)[0][1])
    page.set_input_files("#files", str(tmp_path / "NPKI.zip"))
    page.fill("#password", PW)
    page.fill("#rrn", "900101-1234567")
    submit(page, True)
    page.wait_for_selector("#files-error")
    assert_accessible(page, "registration files, VID mismatch")
    cert, random_num = bank.issue(keys[1])
    (tmp_path / "NPKI.zip").write_bytes(npki_files(cert, keys[1], random_num)[0][1])
    page.set_input_files("#files", str(tmp_path / "NPKI.zip"))
    page.fill("#password", PW)
    page.fill("#rrn", "900101-1234567")
    submit(page, True)
    page.wait_for_url("**/register/done")
    assert_accessible(page, "registration done")
    page.goto("/my/")
    assert_accessible(page, "my certificates with a registration")
    page.locator("main .card form button[type=submit]").first.click()
    page.wait_for_selector("input[name=confirm]", state="attached")
    page.wait_for_function("() => !document.querySelector('.htmx-request')")
    assert_accessible(page, "remove a registration")
    page.locator("main form button[type=submit]").first.click()
    page.wait_for_url("**/my/")
    page.wait_for_selector(".notice")
    assert_accessible(page, "my certificates, registration removed")
