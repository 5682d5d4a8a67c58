"""Revocation, suspension and resumption, and what relying parties are told: the CRL is
re-published on every change, and OCSP never answers a stale "good"."""
from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from models import AuditEvent, Certificate, Crl
from services import ca_store, issuance, status
from services.errors import DomainError
from tests.conftest import last_sms, move_clock

# Every signature here is made once with the CA keys in files and once in a PKCS#11 token.
pytestmark = pytest.mark.both_backends

PASSWORD = "Blue!sky42x"


@pytest.fixture
def cert(demo):
    return issuance.issue_certificate(demo["person"], "personal-banking", idn="9001011234567",
                                      actor="test", password=PASSWORD,
                                      offer_downloads=False).certificate


def x509_of(record):
    return x509.load_der_x509_certificate(bytes(record.der))


def ask(record, algorithm=hashes.SHA1(), nonce=False):
    """Ask our responder about `record`, as a relying party would; returns the response."""
    builder = ocsp.OCSPRequestBuilder().add_certificate(
        x509_of(record), ca_store.load_ca().issuing_cert, algorithm)
    if nonce:
        builder = builder.add_extension(x509.OCSPNonce(b"0123456789abcdef"), critical=False)
    request = builder.build().public_bytes(serialization.Encoding.DER)
    return ocsp.load_der_ocsp_response(status.ocsp_answer(request).der)


def crl_now():
    return x509.load_der_x509_crl(bytes(status.latest_crl().der))


def crl_number(crl) -> int:
    return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number


def test_a_new_certificate_is_good(cert):
    response = ask(cert)
    assert response.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
    assert response.certificate_status == ocsp.OCSPCertStatus.GOOD
    assert crl_now().get_revoked_certificate_by_serial_number(int(cert.serial, 16)) is None


def test_revoking_is_seen_at_once_by_ocsp_and_the_crl(cert):
    assert ask(cert).certificate_status == ocsp.OCSPCertStatus.GOOD      # now cached
    numbers = Crl.select().count()
    status.revoke_certificate(cert, "key-compromise", actor="test")
    response = ask(cert)
    assert response.certificate_status == ocsp.OCSPCertStatus.REVOKED
    assert response.revocation_reason == x509.ReasonFlags.key_compromise
    entry = crl_now().get_revoked_certificate_by_serial_number(int(cert.serial, 16))
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason == \
        x509.ReasonFlags.key_compromise
    assert entry.extensions.get_extension_for_class(x509.InvalidityDate)
    assert Crl.select().count() == numbers + 2          # its partition's and the full CRL
    assert "revoked" in last_sms(cert.customer) or "폐기" in last_sms(cert.customer)


def test_suspend_and_resume_go_through_certificate_hold_and_back(cert):
    assert ask(cert).certificate_status == ocsp.OCSPCertStatus.GOOD
    status.suspend_certificate(cert, actor="test")
    held = ask(cert)
    assert held.certificate_status == ocsp.OCSPCertStatus.REVOKED
    assert held.revocation_reason == x509.ReasonFlags.certificate_hold
    entry = crl_now().get_revoked_certificate_by_serial_number(int(cert.serial, 16))
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason == \
        x509.ReasonFlags.certificate_hold
    status.resume_certificate(Certificate.get_by_id(cert.id), actor="test")
    assert ask(cert).certificate_status == ocsp.OCSPCertStatus.GOOD
    assert crl_now().get_revoked_certificate_by_serial_number(int(cert.serial, 16)) is None


def test_crl_numbers_rise_and_the_crl_is_signed_by_the_issuing_ca(cert):
    first = crl_now()
    status.suspend_certificate(cert, actor="test")
    second = crl_now()
    assert crl_number(second) > crl_number(first)
    assert second.is_signature_valid(ca_store.load_ca().issuing_cert.public_key())
    assert second.next_update_utc - second.last_update_utc == timedelta(hours=24)


def test_a_reissue_puts_the_superseded_certificate_on_the_crl(cert, demo):
    issuance.issue_certificate(demo["person"], "personal-banking", idn="9001011234567",
                               actor="test", password=PASSWORD, offer_downloads=False)
    entry = crl_now().get_revoked_certificate_by_serial_number(int(cert.serial, 16))
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason == \
        x509.ReasonFlags.superseded
    assert ask(cert).certificate_status == ocsp.OCSPCertStatus.REVOKED


def test_ocsp_answers_sha256_cert_ids_and_echoes_the_nonce(cert):
    response = ask(cert, hashes.SHA256(), nonce=True)
    assert response.certificate_status == ocsp.OCSPCertStatus.GOOD
    assert response.hash_algorithm.name == "sha256"
    assert response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == \
        b"0123456789abcdef"
    signer = ca_store.load_ca().ocsp_cert
    assert response.certificates[0] == signer
    assert response.next_update_utc > response.this_update_utc


def test_ocsp_says_unknown_for_a_serial_never_issued_here(cert):
    Certificate.delete().execute()            # as if the serial had never been issued
    assert ask(cert).certificate_status == ocsp.OCSPCertStatus.UNKNOWN


@pytest.mark.parametrize("garbage", [b"", b"\x30\x03\x02\x01", b"hello" * 10, b"\x30" * 5000])
def test_ocsp_answers_malformed_request_to_garbage(garbage):
    response = ocsp.load_der_ocsp_response(status.ocsp_answer(garbage).der)
    assert response.response_status == ocsp.OCSPResponseStatus.MALFORMED_REQUEST


def test_a_customer_cannot_change_someone_elses_certificate_and_the_try_is_audited(cert, demo):
    with pytest.raises(DomainError) as refused:
        status.find_certificate(cert.serial, demo["business"], actor="customer:B0000001")
    assert refused.value.code == "certificate_not_found"
    assert AuditEvent.select().where(AuditEvent.action == "certificate.foreign_attempt").count() == 1
    assert Certificate.get_by_id(cert.id).status == "valid"


def test_revoking_twice_is_refused_and_changes_nothing(cert):
    status.revoke_certificate(cert, "cessation-of-operation", actor="test")
    crls = Crl.select().count()
    with pytest.raises(DomainError) as again:
        status.revoke_certificate(cert, "key-compromise", actor="test")
    assert again.value.code == "already_revoked" and again.value.status == 409
    assert Certificate.get_by_id(cert.id).revocation_reason == "cessation-of-operation"
    assert Crl.select().count() == crls


def test_a_revoked_certificate_cannot_be_suspended_or_resumed(cert):
    status.revoke_certificate(cert, "superseded", actor="test")
    for change in (status.suspend_certificate, status.resume_certificate):
        with pytest.raises(DomainError):
            change(Certificate.get_by_id(cert.id), actor="test")


def test_customers_choose_among_four_reasons_operators_also_privilege_withdrawn(cert):
    with pytest.raises(DomainError):
        status.revoke_certificate(cert, "privilege-withdrawn", actor="customer",
                                  reasons=status.CUSTOMER_REASONS)
    status.revoke_certificate(cert, "privilege-withdrawn", actor="operator:kim")


def test_serials_are_40_hex_digits_and_bad_ones_get_a_message(cert):
    assert status.find_certificate(cert.serial.upper()).id == cert.id
    with pytest.raises(DomainError) as bad:
        status.find_certificate("not-a-serial")
    assert bad.value.code == "serial_invalid"


def test_jobs_republish_the_crl_after_12_hours_and_renew_the_ocsp_signer(app, cert):
    runner = app.test_cli_runner()
    status.latest_crl()
    result = runner.invoke(args=["jobs", "run"])
    assert "Published CRL" not in result.output
    move_clock(hours=12, minutes=1)
    assert "Published CRL" in runner.invoke(args=["jobs", "run"]).output
    old = ca_store.load_ca().ocsp_cert
    move_clock(days=24)
    result = runner.invoke(args=["jobs", "run"])
    assert "New OCSP signer" in result.output, result.output
    new = ca_store.load_ca().ocsp_cert
    assert new.serial_number != old.serial_number
    assert ask(cert).certificates[0] == new


def test_operator_commands_revoke_suspend_resume_by_serial(app, cert):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["certs", "suspend", cert.serial, "--operator", "kim"])
    assert result.exit_code == 0, result.output
    assert Certificate.get_by_id(cert.id).status == "suspended"
    assert runner.invoke(args=["certs", "resume", cert.serial]).exit_code == 0
    asked = runner.invoke(args=["certs", "revoke", cert.serial, "--reason", "key-compromise",
                                "--operator", "kim"])
    assert asked.exit_code == 0 and "second officer" in asked.output, asked.output
    assert Certificate.get_by_id(cert.id).status == "valid"               # four eyes
    result = runner.invoke(args=["certs", "revoke", cert.serial, "--reason", "key-compromise",
                                 "--operator", "lee"])
    assert result.exit_code == 0 and "CRL" in result.output
    assert AuditEvent.select().where((AuditEvent.action == "certificate.revoke")
                                     & (AuditEvent.actor == "operator:lee")).count() == 1
    again = runner.invoke(args=["certs", "revoke", cert.serial, "--reason", "superseded"])
    assert again.exit_code != 0 and "Traceback" not in again.output


def test_after_suspend_and_resume_ocsp_does_not_serve_the_good_signed_before(cert):
    before = ask(cert)
    move_clock(seconds=2)
    status.suspend_certificate(cert, actor="test")
    held = ask(cert)
    move_clock(seconds=2)
    status.resume_certificate(Certificate.get_by_id(cert.id), actor="test")
    after = ask(cert)
    assert after.certificate_status == ocsp.OCSPCertStatus.GOOD
    assert after.this_update_utc > held.this_update_utc > before.this_update_utc


def test_crls_published_in_the_same_second_have_rising_this_update(cert):
    first = status.publish_crl()
    second = status.publish_crl()
    assert second.this_update > first.this_update
