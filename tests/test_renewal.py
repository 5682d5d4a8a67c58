"""Renewal (갱신) as the services do it: the window in KST days, the refusals, a same-key
renewal that openssl accepts, a new-key renewal's files, and automatic renewal."""
import datetime as dt
import io
import subprocess
import zipfile

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from models import AuditEvent, Certificate
from pki import files as pki_files
from pki import npki, pkcs12
from pki.profile import KST
from services import ca_store, clock, issuance, renewal, status
from services.errors import DomainError

# Every signature here is made once with the CA keys in files and once in a PKCS#11 token.
pytestmark = pytest.mark.both_backends

PASSWORD = "Blue!sky42x"
NEW_PASSWORD = "Green#leaf73y"
RRN = "9001011234567"


def issue(customer, type_id="personal-banking", password=PASSWORD):
    result = issuance.issue_certificate(customer, type_id, idn=RRN, actor="test",
                                        password=password, offer_downloads=False)
    return result.certificate, {kind: content for kind, _n, _m, content in result.files}


def set_kst(day: dt.date, hour=0, minute=0, second=0):
    """Move the one clock to a moment given in KST."""
    target = dt.datetime.combine(day, dt.time(hour, minute, second), tzinfo=KST)
    clock.advance(clock.naive(target) - clock.now())


def expiry(cert) -> dt.date:
    return clock.aware(cert.not_after).astimezone(KST).date()


def spki(cert: x509.Certificate) -> bytes:
    return cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)


def held_npki(files) -> issuance.KeyFiles:
    with zipfile.ZipFile(io.BytesIO(files["npki"])) as archive:
        signpri = next(archive.read(n) for n in archive.namelist() if n.endswith("signPri.key"))
    key, _random = npki.read_private_key(signpri, PASSWORD)
    return issuance.KeyFiles(key, PASSWORD, signpri)


def refusal_code(cert):
    problem = renewal.refusal(Certificate.get_by_id(cert.id))
    return problem.code if problem else None


def test_the_window_opens_30_kst_days_before_the_expiry_day_and_closes_with_it(demo):
    cert, _files = issue(demo["person"])
    day = expiry(cert)
    assert clock.aware(cert.not_after).astimezone(KST).time() == dt.time(23, 59, 59)
    set_kst(day - dt.timedelta(days=31), 23, 59, 59)
    problem = renewal.refusal(cert)
    assert problem.code == "renew_too_early"
    assert problem.params["date"] == day - dt.timedelta(days=30)
    assert clock.aware(renewal.window_opens(cert)).astimezone(KST) == dt.datetime.combine(
        day - dt.timedelta(days=30), dt.time(0), tzinfo=KST)
    set_kst(day - dt.timedelta(days=30))
    assert renewal.refusal(cert) is None
    set_kst(day, 23, 59, 58)                         # the expiry day, in KST
    assert renewal.refusal(cert) is None
    set_kst(day + dt.timedelta(days=1))              # the day after
    assert renewal.refusal(cert).code == "renew_expired"


@pytest.mark.parametrize("change, code", [
    (lambda cert: status.revoke_certificate(cert, "key-compromise", actor="t"), "renew_revoked"),
    (lambda cert: status.suspend_certificate(cert, actor="t"), "renew_suspended"),
])
def test_a_revoked_or_suspended_certificate_is_not_renewed(demo, change, code):
    cert, _files = issue(demo["person"])
    set_kst(expiry(cert) - dt.timedelta(days=10))
    change(cert)
    assert refusal_code(cert) == code
    with pytest.raises(DomainError) as refused:
        renewal.renew_certificate(Certificate.get_by_id(cert.id), "test")
    assert refused.value.code == code
    assert Certificate.select().count() == 1


def test_a_same_key_renewal_certifies_the_same_key_until_the_old_expiry_plus_a_year(
        demo, tmp_path):
    cert, files = issue(demo["person"])
    set_kst(expiry(cert) - dt.timedelta(days=20), 10)
    renewed = renewal.renew_certificate(cert, "customer:P0000001", held=held_npki(files))
    new = renewed.certificate
    old_x509 = x509.load_der_x509_certificate(bytes(cert.der))
    new_x509 = x509.load_der_x509_certificate(bytes(new.der))
    assert spki(new_x509) == spki(old_x509)
    assert new_x509.subject == old_x509.subject            # the same NPKI folder
    assert npki.read_identify_data(new_x509) == npki.read_identify_data(old_x509)
    assert expiry(new) == expiry(cert).replace(year=expiry(cert).year + 1)
    assert abs(new.not_before - clock.now()) < dt.timedelta(seconds=2)
    # The old one stays valid until its own expiry, pointing at its successor.
    old = Certificate.get_by_id(cert.id)
    assert old.status == "valid" and old.replaced_by_id == new.id and renewal.is_renewed(old)
    assert issuance.current_certificate(demo["person"], "personal-banking").id == new.id
    # openssl accepts it.
    (tmp_path / "new.pem").write_bytes(pki_files.cert_pem(new_x509))
    (tmp_path / "chain.pem").write_bytes(pki_files.chain_pem(ca_store.chain()))
    stamp = str(int(clock.timestamp()))
    result = subprocess.run(["openssl", "verify", "-attime", stamp, "-CAfile",
                             str(tmp_path / "chain.pem"), str(tmp_path / "new.pem")],
                            capture_output=True, text=True)
    assert result.returncode == 0 and ": OK" in result.stdout, result.stdout + result.stderr
    # The new NPKI folder: the new signCert.der beside the customer's own signPri.key.
    delivered = {kind: content for kind, _n, _m, content in renewed.files}
    with zipfile.ZipFile(io.BytesIO(delivered["npki"])) as archive:
        names = archive.namelist()
        key_name = next(n for n in names if n.endswith("signPri.key"))
        assert archive.read(key_name) == held_npki(files).signpri
        assert archive.read(key_name.replace("signPri.key", "signCert.der")) == bytes(new.der)
    with zipfile.ZipFile(io.BytesIO(files["npki"])) as archive:
        assert sorted(archive.namelist()) == sorted(names)
    key, p12_cert, _chain = pkcs12.read_pkcs12(delivered["p12"], PASSWORD)
    assert spki(p12_cert) == spki(new_x509) and p12_cert.serial_number == new_x509.serial_number
    # A certificate renews once.
    with pytest.raises(DomainError) as again:
        renewal.renew_certificate(Certificate.get_by_id(cert.id), "test")
    assert again.value.code == "renew_already" and again.value.params["serial"] == new.serial
    assert AuditEvent.select().where(AuditEvent.action == "certificate.renew").count() == 1


def test_a_new_key_renewal_gives_new_files_under_the_new_password(demo):
    cert, _files = issue(demo["person"])
    set_kst(expiry(cert) - dt.timedelta(days=1), 12)
    for password, idn in (("short", RRN), (NEW_PASSWORD, "8001011234567")):
        with pytest.raises(DomainError):
            renewal.renew_certificate(cert, "test", new_password=password, idn=idn)
    assert Certificate.select().count() == 1
    renewed = renewal.renew_certificate(cert, "test", new_password=NEW_PASSWORD, idn=RRN)
    delivered = {kind: content for kind, _n, _m, content in renewed.files}
    assert set(delivered) == {"npki", "p12", "cert", "chain"}
    new_x509 = x509.load_der_x509_certificate(bytes(renewed.certificate.der))
    assert spki(new_x509) != spki(x509.load_der_x509_certificate(bytes(cert.der)))
    with zipfile.ZipFile(io.BytesIO(delivered["npki"])) as archive:
        signpri = next(archive.read(n) for n in archive.namelist() if n.endswith("signPri.key"))
    key, random_num = npki.read_private_key(signpri, NEW_PASSWORD)
    assert spki(new_x509) == key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert npki.read_identify_data(new_x509)[1] == npki.compute_vid(RRN, random_num)
    pkcs12.read_pkcs12(delivered["p12"], NEW_PASSWORD)


def test_a_key_that_is_not_the_certificates_is_refused_and_nothing_is_signed(demo):
    cert, _files = issue(demo["person"])
    _other, other_files = issue(demo["person"], "personal-general")
    set_kst(expiry(cert) - dt.timedelta(days=3))
    with pytest.raises(DomainError) as refused:
        renewal.renew_certificate(cert, "test", held=held_npki(other_files))
    assert refused.value.code == "key_mismatch"
    assert Certificate.select().count() == 2
    assert Certificate.get_by_id(cert.id).renewal_started_at is None


def test_a_renewal_already_under_way_stops_a_second_one_before_signing(demo):
    cert, _files = issue(demo["person"])
    set_kst(expiry(cert) - dt.timedelta(days=3))
    Certificate.update(renewal_started_at=clock.now()).where(Certificate.id == cert.id).execute()
    with pytest.raises(DomainError) as busy:
        renewal.renew_certificate(Certificate.get_by_id(cert.id), "test")
    assert busy.value.code == "renew_conflict"
    assert Certificate.select().count() == 1
    clock.advance(renewal.CLAIM_LIFE + dt.timedelta(seconds=1))    # a crashed run's claim
    renewal.renew_certificate(Certificate.get_by_id(cert.id), "test")
    assert Certificate.select().count() == 2


def test_reissuing_supersedes_a_renewed_predecessor_too(demo):
    cert, _files = issue(demo["person"])
    set_kst(expiry(cert) - dt.timedelta(days=3))
    new = renewal.renew_certificate(cert, "test").certificate
    reissued = issuance.issue_certificate(demo["person"], "personal-banking", idn=RRN,
                                          actor="test", password=PASSWORD,
                                          offer_downloads=False)
    assert reissued.replaced.id == new.id
    for old in (cert, new):
        row = Certificate.get_by_id(old.id)
        assert (row.status, row.revocation_reason, row.replaced_by_id) == (
            "revoked", "superseded", reissued.certificate.id)


def test_auto_renewal_takes_7_14_or_30_days_and_only_for_a_valid_certificate(demo):
    cert, _files = issue(demo["person"])
    with pytest.raises(DomainError) as wrong:
        renewal.set_auto_renewal(cert, 10, "test")
    assert wrong.value.code == "auto_renew_lead"
    cert = renewal.set_auto_renewal(cert, 14, "test")
    assert clock.aware(renewal.auto_renewal_due(cert)).astimezone(KST) == dt.datetime.combine(
        expiry(cert) - dt.timedelta(days=14), dt.time(9), tzinfo=KST)
    assert renewal.set_auto_renewal(cert, None, "test").auto_renew_days is None
    status.suspend_certificate(cert, actor="t")
    with pytest.raises(DomainError) as suspended:
        renewal.set_auto_renewal(Certificate.get_by_id(cert.id), 7, "test")
    assert suspended.value.code == "auto_renew_not_possible"


def test_a_certificate_revoked_while_its_renewal_is_signed_gets_no_successor(demo, monkeypatch):
    cert, files = issue(demo["person"])
    set_kst(expiry(cert) - dt.timedelta(days=10), 10)
    sign = issuance.sign_end_entity

    def revoked_meanwhile(*args, **kwargs):
        status.revoke_certificate(Certificate.get_by_id(cert.id), "key-compromise", actor="t")
        return sign(*args, **kwargs)
    monkeypatch.setattr(issuance, "sign_end_entity", revoked_meanwhile)
    with pytest.raises(DomainError) as refused:
        renewal.renew_certificate(cert, "test", held=held_npki(files))
    assert refused.value.code == "renew_revoked"
    assert Certificate.select().count() == 1
    old = Certificate.get_by_id(cert.id)
    assert old.replaced_by_id is None and old.renewal_started_at is None


def test_a_certificate_replaced_by_a_reissue_says_so_and_names_the_new_one(demo):
    cert, _files = issue(demo["person"])
    reissued = issuance.issue_certificate(demo["person"], "personal-banking", idn=RRN,
                                          actor="test", password=PASSWORD,
                                          offer_downloads=False).certificate
    set_kst(expiry(cert) - dt.timedelta(days=10), 10)
    problem = renewal.refusal(Certificate.get_by_id(cert.id))
    assert problem.code == "renew_superseded" and problem.params["serial"] == reissued.serial


def renewed_pair(demo, same_key=True):
    """A certificate renewed 10 days before its expiry, and its successor."""
    cert, files = issue(demo["person"])
    set_kst(expiry(cert) - dt.timedelta(days=10), 10)
    options = {"held": held_npki(files)} if same_key else {"new_password": NEW_PASSWORD,
                                                            "idn": RRN}
    return cert, renewal.renew_certificate(cert, "test", **options).certificate


def test_a_renewed_certificate_and_its_successor_change_status_together(demo):
    """They are one certificate to the customer, and a same-key pair shares one key: what
    happens to the successor happens to the one it renewed."""
    cert, new = renewed_pair(demo)
    assert [c.id for c in status.renewed_into(new)] == [cert.id]

    def states():
        return [Certificate.get_by_id(c.id).status for c in (cert, new)]
    status.suspend_certificate(new, actor="t")
    assert states() == ["suspended", "suspended"]
    assert renewal.refusal(Certificate.get_by_id(cert.id)).code == "renew_already"
    status.resume_certificate(Certificate.get_by_id(new.id), actor="t")
    assert states() == ["valid", "valid"]
    status.revoke_certificate(Certificate.get_by_id(new.id), "cessation-of-operation", actor="t")
    assert states() == ["revoked", "revoked"]
    events = AuditEvent.select().where(AuditEvent.action == "certificate.revoke")
    assert {e.target for e in events} == {cert.serial, new.serial}
    # Both on the CRL.
    crl = x509.load_der_x509_crl(bytes(status.latest_crl().der))
    assert {int(cert.serial, 16), int(new.serial, 16)} <= {r.serial_number for r in crl}


def test_a_compromised_key_takes_down_every_certificate_for_it(app, demo):
    cert, new = renewed_pair(demo)
    for officer in ("kim", "lee"):                                       # four eyes
        result = app.test_cli_runner().invoke(args=["certs", "revoke", cert.serial, "--reason",
                                                    "key-compromise", "--operator", officer])
        assert result.exit_code == 0, result.output                     # the older one
    assert f"Revoked with it: {new.serial}" in result.output
    assert Certificate.get_by_id(new.id).status == "revoked"
    assert Certificate.get_by_id(new.id).revocation_reason == "key-compromise"


def test_revoking_the_predecessor_for_another_reason_leaves_the_successor(demo):
    cert, new = renewed_pair(demo, same_key=False)
    status.revoke_certificate(Certificate.get_by_id(cert.id), "superseded", actor="t")
    assert Certificate.get_by_id(new.id).status == "valid"


def test_key_compromise_of_a_new_key_revokes_the_older_one_as_superseded(demo):
    cert, new = renewed_pair(demo, same_key=False)
    revoked = status.revoke_certificate(new, "key-compromise", actor="t")
    assert revoked.changed_along == [cert.serial]
    old = Certificate.get_by_id(cert.id)
    assert (old.status, old.revocation_reason) == ("revoked", "superseded")   # its own key
    assert renewal.refusal(old).code == "renew_revoked"


def test_refusals_name_the_certificate_in_force_at_the_end_of_the_chain(demo):
    first, _files = issue(demo["person"])
    second = issuance.issue_certificate(demo["person"], "personal-banking", idn=RRN,
                                        actor="t", password=PASSWORD,
                                        offer_downloads=False).certificate
    third = issuance.issue_certificate(demo["person"], "personal-banking", idn=RRN,
                                       actor="t", password=PASSWORD,
                                       offer_downloads=False).certificate
    problem = renewal.refusal(Certificate.get_by_id(first.id))
    assert problem.code == "renew_superseded" and problem.params["serial"] == third.serial
    assert Certificate.get_by_id(second.id).replaced_by_id == third.id
    # A renewed certificate whose successor was revoked on its own (an older database, or
    # an operator naming the successor) is not "already renewed": it cannot renew again.
    set_kst(expiry(third) - dt.timedelta(days=10), 10)
    fourth = renewal.renew_certificate(third, "test").certificate
    Certificate.update(status="revoked", revocation_reason="cessation-of-operation").where(
        Certificate.id == fourth.id).execute()
    assert renewal.refusal(Certificate.get_by_id(third.id)).code == "renew_successor_revoked"
    assert renewal.refusal(Certificate.get_by_id(first.id)).params["serial"] == third.serial
    Certificate.update(status="revoked", revocation_reason="cessation-of-operation").where(
        Certificate.id == third.id).execute()
    assert renewal.refusal(Certificate.get_by_id(first.id)).code == "renew_revoked"
