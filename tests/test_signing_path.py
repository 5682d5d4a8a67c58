"""No signature without a record: the issuance path stopped at each step leaves a reservation
that says how far it got, and `jobs run` settles it so that the database, the CRL and OCSP
agree — a certificate signed but never stored is revoked, never left valid and unknown."""
import hashlib

import pytest
from cryptography import x509
from cryptography.x509 import ocsp

from models import AuditEvent, Certificate, SerialReservation
from pki import lint as pki_lint
from pki import signer as pki_signer
from services import audit, issuance
from services.errors import DomainError
from tests.conftest import move_clock
from tests.test_status import ask, crl_now

# Every signature here is made once with the CA keys in files and once in a PKCS#11 token.
pytestmark = pytest.mark.both_backends

PASSWORD = "Blue!sky42x"


class Crash(Exception):
    """A process dying at this point, as far as the database can tell."""


def issue(demo):
    return issuance.issue_certificate(demo["person"], "personal-banking", idn="9001011234567",
                                      actor="test", password=PASSWORD, offer_downloads=False)


def crash_at(monkeypatch, module, name):
    def crash(*_args, **_kwargs):
        raise Crash(name)
    monkeypatch.setattr(module, name, crash)


def only_reservation() -> SerialReservation:
    return SerialReservation.select().get()


def jobs_run(app) -> str:
    result = app.test_cli_runner().invoke(args=["jobs", "run"])
    assert result.exit_code == 0, result.output
    return result.output


def test_an_issuance_records_each_step_and_signs_exactly_what_was_linted(demo):
    record = issue(demo).certificate
    reservation = only_reservation()
    assert reservation.serial == record.serial and reservation.step == "issued"
    cert = x509.load_der_x509_certificate(bytes(record.der))
    assert reservation.tbs_sha256 == hashlib.sha256(cert.tbs_certificate_bytes).hexdigest()
    assert bytes(reservation.der) == bytes(record.der)


def test_a_lint_refusal_is_recorded_and_nothing_is_signed(demo, monkeypatch):
    monkeypatch.setattr(pki_lint, "lint_certificate", lambda _cert: ["tbsCertificate: made up"])
    signed = []
    monkeypatch.setattr(pki_signer.Signer, "certificate", lambda *a: signed.append(a))
    with pytest.raises(DomainError) as refused:
        issue(demo)
    assert refused.value.code == "lint_failed" and signed == []
    reservation = only_reservation()
    assert reservation.step == "refused" and reservation.der is None
    assert AuditEvent.get(AuditEvent.action == "issue.lint_refused").target == reservation.serial


def test_a_crash_before_signing_is_abandoned_by_jobs_run(app, demo, monkeypatch):
    crash_at(monkeypatch, pki_signer.Signer, "certificate")
    with pytest.raises(Crash):
        issue(demo)
    reservation = only_reservation()
    assert reservation.step == "linted" and reservation.tbs_sha256
    assert "interrupted" not in jobs_run(app)          # still within its 10 minutes
    move_clock(minutes=11)
    assert "1 never signed, 0 signed but never delivered" in jobs_run(app)
    assert only_reservation().step == "abandoned"
    assert Certificate.select().count() == 0
    assert audit.verify_chain() is None


@pytest.mark.parametrize("where", ["files", "storing transaction"])
def test_a_certificate_signed_but_never_stored_is_revoked_and_published(app, demo, monkeypatch,
                                                                       where):
    if where == "files":                # between signing and the customer's transaction
        crash_at(monkeypatch, issuance, "certificate_files")
    else:                               # inside it: everything it wrote is rolled back
        crash_at(monkeypatch, issuance.downloads, "create")
    with pytest.raises(Crash):
        issuance.issue_certificate(demo["person"], "personal-banking", idn="9001011234567",
                                   actor="test", password=PASSWORD)
    reservation = only_reservation()
    assert reservation.step == "signed" and reservation.der
    assert Certificate.select().count() == 0
    # Until it is settled, relying parties are told it is not ours to vouch for.
    assert ask(reservation).certificate_status == ocsp.OCSPCertStatus.UNKNOWN
    move_clock(minutes=11)
    assert "0 never signed, 1 signed but never delivered, revoked" in jobs_run(app)
    record = Certificate.get(Certificate.serial == reservation.serial)
    assert (record.status, record.revocation_reason) == ("revoked", "cessation-of-operation")
    assert record.current_slot is None
    answer = ask(record)
    assert answer.certificate_status == ocsp.OCSPCertStatus.REVOKED
    assert answer.revocation_reason == x509.ReasonFlags.cessation_of_operation
    assert crl_now().get_revoked_certificate_by_serial_number(int(record.serial, 16)) is not None
    event = AuditEvent.get((AuditEvent.action == "certificate.revoke")
                           & (AuditEvent.target == record.serial))
    assert '"never_delivered": true' in event.details
    # The customer can get a certificate of the type: the revoked one holds no slot.
    monkeypatch.undo()
    assert issue(demo).certificate.status == "valid"
    assert "interrupted" not in jobs_run(app)          # settled once
