"""Pre-signed OCSP answers: signed at issuance and on every status change, stored, served
from storage by the lean path in front of Flask (views/ocsp_stored.py), refreshed by
`jobs run`, re-signed when the signer rotates; everything else answered as before."""
import base64
import re
import shutil
import urllib.parse
from types import SimpleNamespace

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from app import create_app
from models import Certificate, OcspResponse
from services import ca_store, clock, issuance, jobs, status
from tests.conftest import move_clock
from tests.test_relying_party import openssl_ocsp, padding_for, throwaway_ca

pytestmark = pytest.mark.both_backends

PASSWORD = "Blue!sky42x"
OPENSSL = shutil.which("openssl")


@pytest.fixture
def cert(demo):
    return issuance.issue_certificate(demo["person"], "personal-banking", idn="9001011234567",
                                      actor="test", password=PASSWORD,
                                      offer_downloads=False).certificate


def question(record, algorithm=hashes.SHA1(), nonce: bytes | None = None, issuer=None) -> bytes:
    builder = ocsp.OCSPRequestBuilder().add_certificate(
        x509.load_der_x509_certificate(bytes(record.der)),
        issuer or ca_store.load_ca().issuing_cert, algorithm)
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build().public_bytes(serialization.Encoding.DER)


def post(client, der: bytes, content_type="application/ocsp-request"):
    return client.post("/ocsp", data=der, content_type=content_type)


def get(client, der: bytes):
    return client.get("/ocsp/" + urllib.parse.quote(base64.b64encode(der).decode(), safe=""))


def answer(response) -> ocsp.OCSPResponse:
    assert response.status_code == 200 and response.mimetype == "application/ocsp-response"
    return ocsp.load_der_ocsp_response(response.data)


def stored(record, algorithm="sha1") -> OcspResponse:
    return OcspResponse.get((OcspResponse.serial == record.serial)
                            & (OcspResponse.hash_algorithm == algorithm))


def signatures() -> int:
    return ca_store.signature_counts().get("ocsp", 0)


@pytest.fixture
def no_flask_ocsp(monkeypatch):
    """Makes the Flask view's OCSP answer fail: what still answers came from storage."""
    def refuse(_der):
        raise AssertionError("answered through Flask, not from storage")
    monkeypatch.setattr(status, "ocsp_answer", refuse)


# -- signed once, served as stored ---------------------------------------------------------

def test_issuing_signs_both_cert_id_hashes_and_the_lean_path_serves_them(app, cert,
                                                                         no_flask_ocsp):
    assert {row.hash_algorithm for row in OcspResponse.select()} == {"sha1", "sha256"}
    client = app.test_client()
    before = signatures()
    for algorithm in (hashes.SHA1(), hashes.SHA256()):
        der = question(cert, algorithm)
        for response in (post(client, der), get(client, der)):
            assert response.data == bytes(stored(cert, algorithm.name).der)
            parsed = answer(response)
            assert parsed.certificate_status == ocsp.OCSPCertStatus.GOOD
            assert parsed.hash_algorithm.name == algorithm.name
            signer = ca_store.load_ca().ocsp_cert
            signer.public_key().verify(parsed.signature, parsed.tbs_response_bytes,
                                       padding_for(signer), parsed.signature_hash_algorithm)
    assert signatures() == before                          # no signature per request


def test_the_same_bytes_and_headers_on_every_request_and_from_two_hosts(
        app, cert, backend_settings, no_flask_ocsp):
    """Two app instances on one database file, as two hosts behind a proxy would be."""
    other = create_app({"CERTCENTER_INSTANCE": str(app.config["INSTANCE"]), "TESTING": True,
                        **backend_settings})
    der = question(cert)
    posts = [post(client, der) for client in (app.test_client(), other.test_client())
             for _ in range(2)]
    gets = [get(client, der) for client in (app.test_client(), other.test_client())
            for _ in range(2)]
    assert len({response.data for response in posts + gets}) == 1
    for response in posts:
        assert response.headers["Cache-Control"] == "no-store"
    assert len({(r.headers["ETag"], r.headers["Last-Modified"], r.headers["Expires"])
                for r in gets}) == 1
    parsed = answer(gets[0])
    assert gets[0].last_modified == parsed.this_update_utc
    assert gets[0].expires == parsed.next_update_utc
    assert re.fullmatch(r"max-age=(\d+), public, no-transform, must-revalidate",
                        gets[0].headers["Cache-Control"])
    assert parsed.next_update_utc - parsed.this_update_utc == status.OCSP_VALIDITY
    assert gets[0].headers["X-Content-Type-Options"] == "nosniff"


def test_stored_and_flask_answers_carry_the_same_ocsp_headers(app, cert, monkeypatch):
    client, der = app.test_client(), question(cert)
    served = {"post": post(client, der), "get": get(client, der)}
    # The same answer through the view: nothing stored to find.
    monkeypatch.setattr(status, "stored_ocsp_answer", lambda _question: None)
    monkeypatch.setattr(status, "_store", lambda *_args: None)
    flask = {"post": post(client, der), "get": get(client, der)}
    for method in ("post", "get"):
        for name in ("Content-Type", "Cache-Control", "ETag", "Last-Modified", "Expires",
                     "X-Content-Type-Options"):
            assert (name in served[method].headers) == (name in flask[method].headers), name
        assert served[method].headers["Content-Type"] == flask[method].headers["Content-Type"]


# -- never a stale "good" -------------------------------------------------------------------

@pytest.mark.parametrize("presigning", [True, False], ids=["re-signed", "not-re-signed"])
def test_a_revocation_is_in_the_very_next_answer_get_and_post(app, cert, monkeypatch,
                                                              presigning):
    client, der = app.test_client(), question(cert)
    assert answer(post(client, der)).certificate_status == ocsp.OCSPCertStatus.GOOD
    assert answer(get(client, der)).certificate_status == ocsp.OCSPCertStatus.GOOD
    if not presigning:
        # Whatever path changes a status, the stored "good" is not served after it.
        monkeypatch.setattr(status, "presign_ocsp", lambda *serials: None)
    status.revoke_certificate(cert, "key-compromise", actor="test")
    for response in (post(client, der), get(client, der)):
        parsed = answer(response)
        assert parsed.certificate_status == ocsp.OCSPCertStatus.REVOKED
        assert parsed.revocation_reason == x509.ReasonFlags.key_compromise
    assert stored(cert).status == "revoked"          # signed then, or at the first question


def test_suspend_and_resume_are_each_served_from_storage_at_once(app, cert):
    client, der = app.test_client(), question(cert)
    status.suspend_certificate(cert, actor="test")
    before = signatures()
    held = answer(post(client, der))
    assert held.certificate_status == ocsp.OCSPCertStatus.REVOKED
    assert held.revocation_reason == x509.ReasonFlags.certificate_hold
    status.resume_certificate(Certificate.get_by_id(cert.id), actor="test")
    assert answer(get(client, der)).certificate_status == ocsp.OCSPCertStatus.GOOD
    assert signatures() == before + 2                # the resumption's two, none per request


def test_a_reissue_stores_revoked_for_the_superseded_one(app, cert, demo, no_flask_ocsp):
    issued = issuance.issue_certificate(demo["person"], "personal-banking", idn="9001011234567",
                                        actor="test", password=PASSWORD, offer_downloads=False)
    client = app.test_client()
    assert answer(post(client, question(cert))).certificate_status == \
        ocsp.OCSPCertStatus.REVOKED
    assert answer(post(client, question(issued.certificate))).certificate_status == \
        ocsp.OCSPCertStatus.GOOD


# -- refreshing -----------------------------------------------------------------------------

def test_jobs_run_signs_again_before_half_way(app, cert):
    first = stored(cert).this_update
    lines = jobs.run()
    assert not any("OCSP" in line for line in lines)          # fresh: nothing to do
    move_clock(hours=3, minutes=1)                            # past 3/8 of 8 hours
    plan = [task.plan for task in jobs.tasks(clock.now())]
    assert "Sign the OCSP answers of 1 certificates and drop 0 about expired ones." in plan
    assert "Signed the OCSP answers of 1 certificates; dropped 0 about expired ones." in jobs.run()
    for algorithm in ("sha1", "sha256"):
        row = stored(cert, algorithm)
        assert row.this_update > first
        # Half-way is still 4 hours off: the refreshed answer is the one served.
        assert row.next_update - row.this_update == status.OCSP_VALIDITY
    assert answer(get(app.test_client(), question(cert))).this_update_utc.replace(
        tzinfo=None) == stored(cert).this_update


def test_past_half_way_without_jobs_the_answer_is_signed_again_on_the_spot(app, cert):
    client, der = app.test_client(), question(cert)
    old = bytes(stored(cert).der)
    move_clock(hours=4, seconds=1)
    fresh = post(client, der)
    assert fresh.data != old and fresh.data == bytes(stored(cert).der)
    before = signatures()
    assert post(client, der).data == fresh.data and signatures() == before


def test_answers_about_expired_certificates_are_dropped(app, cert):
    Certificate.update(not_after=clock.now()).where(Certificate.id == cert.id).execute()
    assert status.ocsp_refresh_due() == (0, 2)
    assert "Signed the OCSP answers of 0 certificates; dropped 2 about expired ones." in \
        jobs.run()
    assert OcspResponse.select().count() == 0
    # Still answered, on the spot, and not kept.
    assert answer(post(app.test_client(), question(cert))).certificate_status == \
        ocsp.OCSPCertStatus.GOOD
    assert OcspResponse.select().count() == 0


def test_a_signer_rotation_leaves_nothing_of_the_old_signer_served(app, cert):
    old = ca_store.load_ca().ocsp_cert
    move_clock(days=24)                    # the signer is due a week before it expires
    lines = jobs.run()
    assert any(line.startswith("New OCSP signer") and "signed the OCSP answers of 1 "
               "certificates again" in line for line in lines), lines
    new = ca_store.load_ca().ocsp_cert
    assert new.serial_number != old.serial_number
    assert {row.signer for row in OcspResponse.select()} == {ca_store.ocsp_signer_id()}
    for response in (post(app.test_client(), question(cert)),
                     get(app.test_client(), question(cert, hashes.SHA256()))):
        assert answer(response).certificates[0] == new


def test_answers_of_a_replaced_signer_are_not_served_even_before_jobs_re_sign(app, cert):
    old_der = bytes(stored(cert).der)
    ca_store.rotate_signer("ocsp", "test")        # the signer alone, nothing re-signed
    response = post(app.test_client(), question(cert))
    assert response.data != old_der
    assert answer(response).certificates[0] == ca_store.load_ca().ocsp_cert
    assert stored(cert).signer == ca_store.ocsp_signer_id()


# -- nonces, and what is not stored ---------------------------------------------------------

def test_a_nonce_gets_a_fresh_signature_that_echoes_it_and_nothing_is_stored(app, cert):
    client, kept = app.test_client(), bytes(stored(cert).der)
    before = signatures()
    first = answer(post(client, question(cert, nonce=b"\x01" * 16)))
    second = answer(post(client, question(cert, nonce=b"\x02" * 16)))
    for parsed, nonce in ((first, b"\x01" * 16), (second, b"\x02" * 16)):
        assert parsed.certificate_status == ocsp.OCSPCertStatus.GOOD
        assert parsed.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == nonce
    assert signatures() == before + 2
    assert bytes(stored(cert).der) == kept


def test_unknown_malformed_other_issuer_and_root_questions_answer_as_before(app, cert):
    client = app.test_client()
    rows = OcspResponse.select().count()
    other_ca = throwaway_ca()[0]
    foreign = ocsp.OCSPRequestBuilder().add_certificate_by_hash(
        *status.pki_ocsp.issuer_hashes(other_ca, hashes.SHA1()), int(cert.serial, 16),
        hashes.SHA1()).build().public_bytes(serialization.Encoding.DER)
    assert answer(post(client, foreign)).certificate_status == ocsp.OCSPCertStatus.UNKNOWN
    never_issued = ocsp.OCSPRequestBuilder().add_certificate_by_hash(
        *status.pki_ocsp.issuer_hashes(ca_store.load_ca().issuing_cert, hashes.SHA1()),
        12345, hashes.SHA1()).build().public_bytes(serialization.Encoding.DER)
    for response in (post(client, never_issued), get(client, never_issued)):
        assert answer(response).certificate_status == ocsp.OCSPCertStatus.UNKNOWN
    for garbage in (b"", b"\x30\x03\x02\x01", question(cert)[:-3]):
        assert answer(post(client, garbage)).response_status == \
            ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    assert answer(client.get("/ocsp/not*base64")).response_status == \
        ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    ca = ca_store.load_ca()
    about_issuing_ca = ocsp.OCSPRequestBuilder().add_certificate(
        ca.issuing_cert, ca.root_cert, hashes.SHA1()).build().public_bytes(
        serialization.Encoding.DER)
    response = post(client, about_issuing_ca)
    assert answer(response).certificate_status == ocsp.OCSPCertStatus.GOOD
    assert response.data == ca_store.root_answer(ca.issuing_cert.serial_number, "sha1")[0]
    assert post(client, question(cert), "text/plain").status_code == 415
    assert OcspResponse.select().count() == rows               # nothing stored for these


# -- openssl ocsp over HTTP -----------------------------------------------------------------

@pytest.mark.skipif(OPENSSL is None, reason="the openssl command is not installed")
def test_openssl_verifies_stored_and_nonce_answers_before_and_after_a_revocation(
        app, cert, live, tmp_path):
    ca = ca_store.load_ca()
    for name, certificate in (("root.pem", ca.root_cert), ("issuing.pem", ca.issuing_cert),
                              ("ee.pem", x509.load_der_x509_certificate(bytes(cert.der)))):
        (tmp_path / name).write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    modes = [("-no_nonce",), ("-sha256", "-no_nonce"), (), ("-sha256",)]
    for expected in ("good", "revoked"):
        for options in modes:
            before = signatures()
            state, output = openssl_ocsp(SimpleNamespace(folder=tmp_path, url=live), *options)
            assert state == expected, output
            # Without a nonce from storage; with one, one fresh signature.
            assert signatures() == before + (0 if "-no_nonce" in options else 1), options
        if expected == "good":
            status.revoke_certificate(cert, "key-compromise", actor="test")
    assert re.search(r"^\s*Reason: keyCompromise$", output, re.M), output
