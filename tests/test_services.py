"""The registration authority's rules, called the way the views and the CLI call them."""

import re

import pyotp
import pytest
from cryptography import x509

from models import AuditEvent, Certificate, Customer, Download, OneTimeCode
from models.migrations import MIGRATIONS, current_version, upgrade
from pki import npki
from services import audit, clock, customers, downloads, issuance, limits, verification
from services.errors import DomainError
from services.verification import IdentityClaim
from tests.conftest import last_sms, move_clock, sms_code

# Every signature here is made once with the CA keys in files and once in a PKCS#11 token.
pytestmark = pytest.mark.both_backends

GOOD = IdentityClaim("홍길동", "900101-1234567", "110-123-456789", "1234")
PASSWORD = "Blue!sky42x"


def claim(**changes):
    return IdentityClaim(**{**GOOD.__dict__, **changes})


# -- identity -------------------------------------------------------------------------------

def test_identity_matches_the_demo_person(demo):
    assert verification.check_identity(GOOD, "10.0.0.1").code == "P0000001"


@pytest.mark.parametrize("change", [{"pin": "9999"}, {"name": "홍길순"},
                                    {"account": "220-987-654321"}])
def test_a_wrong_detail_gets_one_message_that_does_not_say_which(demo, change):
    with pytest.raises(DomainError) as failure:
        verification.check_identity(claim(**change), "10.0.0.1")
    assert failure.value.code == "identity_mismatch"


def test_five_wrong_pins_lock_the_customer_for_30_minutes_and_alert_them(demo):
    for _ in range(5):
        with pytest.raises(DomainError):
            verification.check_identity(claim(pin="0000"), "10.0.0.1")
    with pytest.raises(DomainError) as locked:
        verification.check_identity(GOOD, "10.0.0.2")     # even the right PIN, elsewhere
    # The same answer as any mismatch: the PIN is not even checked while locked, so the
    # answer cannot tell a right PIN from a wrong one. The text message tells the customer.
    assert locked.value.code == "identity_mismatch" and locked.value.status == 400
    assert "30" in last_sms(demo["person"])
    assert AuditEvent.select().where(AuditEvent.action == "customer.locked").count() == 1
    move_clock(minutes=31)
    assert verification.check_identity(GOOD, "10.0.0.2").code == "P0000001"


def test_failures_are_limited_per_client_address(demo):
    for n in range(limits.CLIENT_TRIES):
        with pytest.raises(DomainError):
            verification.check_identity(claim(rrn=f"{850101 + n:06d}-1000000",
                                              account=f"333-000-{n:06d}"), "10.9.9.9")
    with pytest.raises(DomainError) as blocked:
        verification.check_identity(GOOD, "10.9.9.9")
    assert blocked.value.code == "client_blocked"
    assert verification.check_identity(GOOD, "10.0.0.1")         # another address is fine


def test_a_typing_mistake_is_not_counted_as_a_guess(demo):
    for _ in range(6):
        with pytest.raises(DomainError) as failure:
            verification.check_identity(claim(pin="12"), "10.0.0.1")
        assert failure.value.code == "pin_format"
    assert verification.check_identity(GOOD, "10.0.0.1")


# -- SMS codes ------------------------------------------------------------------------------

def test_the_sms_code_works_once(demo):
    person = demo["person"]
    verification.send_sms_code(person)
    code = sms_code(person)
    verification.check_sms_code(person, code)
    with pytest.raises(DomainError) as again:
        verification.check_sms_code(person, code)
    assert again.value.code == "code_none"


def database_bytes(app) -> bytes:
    """Everything SQLite has written for the instance: the file and its write-ahead log."""
    path = app.config["INSTANCE"] / "certcenter.db"
    return b"".join(p.read_bytes() for p in (path, path.with_name(path.name + "-wal")) if p.exists())


def test_the_code_is_not_readable_anywhere_in_the_database(app, demo):
    verification.send_sms_code(demo["person"])
    code = sms_code(demo["person"])                     # the demo inbox's way: unsealed
    assert all(code not in row.code_hash for row in OneTimeCode.select())
    assert re.search(rb"(?<!\d)" + code.encode() + rb"(?!\d)", database_bytes(app)) is None


def test_an_expired_code_is_refused(demo):
    person = demo["person"]
    verification.send_sms_code(person)
    move_clock(minutes=3, seconds=1)
    with pytest.raises(DomainError) as expired:
        verification.check_sms_code(person, sms_code(person))
    assert expired.value.code == "code_expired"


def test_five_wrong_codes_use_up_the_code_and_pause_the_customer(demo):
    person = demo["person"]
    verification.send_sms_code(person)
    right = sms_code(person)
    wrong = "000000" if right != "000000" else "111111"
    lefts = []
    for _ in range(5):
        with pytest.raises(DomainError) as failure:
            verification.check_sms_code(person, wrong)
        lefts.append(failure.value.params.get("left"))
    assert lefts == [4, 3, 2, 1, None]
    with pytest.raises(DomainError) as used_up:
        verification.check_sms_code(person, right)
    assert used_up.value.code == "customer_locked"


def test_resend_waits_30_seconds_and_at_most_5_an_hour(demo):
    person = demo["person"]
    verification.send_sms_code(person)
    with pytest.raises(DomainError) as soon:
        verification.send_sms_code(person)
    assert soon.value.code == "code_resend_too_soon"
    for _ in range(4):
        move_clock(seconds=31)
        verification.send_sms_code(person)
    move_clock(seconds=31)
    with pytest.raises(DomainError) as limit:
        verification.send_sms_code(person)
    assert limit.value.code == "code_send_limit"
    move_clock(hours=1)
    verification.send_sms_code(person)


# -- TOTP -------------------------------------------------------------------------------------

def totp_now(secret):
    return pyotp.TOTP(secret).at(int(clock.timestamp()))


def test_a_totp_code_is_accepted_once(demo):
    person, secret = demo["person"], demo["totp_secret"]
    code = totp_now(secret)
    verification.check_totp(person, code)
    with pytest.raises(DomainError) as replay:
        verification.check_totp(Customer.get_by_id(person.id), code)
    assert replay.value.code == "totp_replayed"
    move_clock(seconds=30)
    verification.check_totp(Customer.get_by_id(person.id), totp_now(secret))


def test_a_totp_code_one_step_old_is_accepted_two_steps_is_not(demo):
    person, secret = demo["person"], demo["totp_secret"]
    old = totp_now(secret)
    move_clock(seconds=30)
    verification.check_totp(person, old)
    stale = totp_now(secret)
    move_clock(seconds=90)
    with pytest.raises(DomainError) as failure:
        verification.check_totp(Customer.get_by_id(person.id), stale)
    assert failure.value.code == "code_wrong_totp"


def test_the_totp_secret_is_encrypted_at_rest(demo):
    assert demo["totp_secret"] not in Customer.get_by_id(demo["person"].id).totp_secret


def test_enrolling_an_authenticator_needs_a_right_first_code(demo):
    business = demo["business"]
    secret = verification.new_totp_secret()
    with pytest.raises(DomainError):
        verification.enroll_totp(business, secret, "000000" if totp_now(secret) != "000000" else "111111")
    assert verification.totp_secret(Customer.get_by_id(business.id)) is None
    verification.enroll_totp(business, secret, totp_now(secret))
    assert verification.totp_secret(Customer.get_by_id(business.id)) == secret


# -- issuance -------------------------------------------------------------------------------

def issue(customer, type_id="personal-banking", idn="9001011234567", **kwargs):
    kwargs.setdefault("password", PASSWORD)
    return issuance.issue_certificate(customer, type_id, idn=idn, actor="test", **kwargs)


def test_issuing_gives_npki_p12_cert_and_chain_links_and_stores_no_key(demo):
    issued = issue(demo["person"])
    assert [link.kind for link in issued.links] == ["npki", "p12", "cert", "chain"]
    record = issued.certificate
    assert len(record.serial) == 40 and record.status == "valid"
    assert record.key_generated_here
    cert = x509.load_der_x509_certificate(bytes(record.der))
    assert npki.read_identify_data(cert)[0] == "홍길동"
    assert "PRIVATE KEY" not in str([bytes(d.content) for d in Download.select()])


def test_the_vid_in_the_certificate_is_the_one_recomputed_from_rrn_and_random_num(demo):
    issued = issue(demo["person"])
    files = {kind: content for kind, _n, _m, content in issued.files}
    import io
    import zipfile
    with zipfile.ZipFile(io.BytesIO(files["npki"])) as archive:
        key_file = next(n for n in archive.namelist() if n.endswith("signPri.key"))
        _key, random_num = npki.read_private_key(archive.read(key_file), PASSWORD)
    cert = x509.load_der_x509_certificate(bytes(issued.certificate.der))
    assert npki.read_identify_data(cert)[1] == npki.compute_vid("9001011234567", random_num)


def test_the_wrong_rrn_for_the_vid_is_refused(demo):
    with pytest.raises(DomainError) as failure:
        issue(demo["person"], idn="8001011234567")
    assert failure.value.code == "identity_mismatch"
    assert Certificate.select().count() == 0


def test_one_valid_certificate_per_type_reissue_revokes_and_keeps_expiry(demo):
    first = issue(demo["person"]).certificate
    move_clock(days=40)
    second = issue(demo["person"])
    old = Certificate.get_by_id(first.id)
    assert second.replaced.id == first.id
    assert old.status == "revoked" and old.revocation_reason == "superseded"
    assert old.replaced_by.id == second.certificate.id
    assert second.certificate.not_after == first.not_after
    assert issuance.current_certificate(demo["person"], "personal-banking").id == second.certificate.id
    assert Certificate.select().where(Certificate.status == "valid").count() == 1
    other_type = issue(demo["person"], "personal-general").certificate
    assert other_type.not_after != first.not_after       # a different type is a new issue


def test_a_csr_issue_offers_only_certificate_and_chain(demo):
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "x")]))
           .sign(key, hashes.SHA256()))
    issued = issue(demo["person"], password=None,
                   csr_der=csr.public_bytes(serialization.Encoding.DER))
    assert [link.kind for link in issued.links] == ["cert", "chain"]
    assert not issued.certificate.key_generated_here


def test_a_business_certificate_needs_approval_then_issues(demo):
    business = demo["business"]
    with pytest.raises(DomainError) as needed:
        issue(business, "business-banking", idn="1234567890")
    assert needed.value.code == "request_needed"
    request = issuance.request_certificate(business, "business-banking")
    with pytest.raises(DomainError) as waiting:
        issue(business, "business-banking", idn="1234567890")
    assert waiting.value.code == "request_waiting"
    issuance.approve_request(request.id, "kim", issuance.REQUIRED_DOCUMENTS)
    assert "승인" in last_sms(business)                     # in the customer's language
    issued = issue(business, "business-banking", idn="123-45-67890")
    assert issuance.list_requests("issued").first().certificate.id == issued.certificate.id
    with pytest.raises(DomainError) as twice:
        issuance.approve_request(request.id, "kim", issuance.REQUIRED_DOCUMENTS)
    assert twice.value.code == "request_decided"


def test_a_rejected_request_tells_the_customer_why(demo):
    request = issuance.request_certificate(demo["business"], "business-general")
    with pytest.raises(DomainError):
        issuance.reject_request(request.id, "kim", "  ")
    issuance.reject_request(request.id, "kim", "business number closed")
    assert "business number closed" in last_sms(demo["business"])


def test_messages_go_out_in_the_customers_language(demo):
    business = demo["business"]
    customers.set_language(business, "en")
    request = issuance.request_certificate(business, "business-banking")
    issuance.approve_request(request.id, "kim", issuance.REQUIRED_DOCUMENTS)
    assert "was approved" in last_sms(business) and "Business" in last_sms(business)


def test_a_person_cannot_get_a_business_type(demo):
    with pytest.raises(DomainError) as failure:
        issue(demo["person"], "business-banking")
    assert failure.value.code == "cert_type_not_for_you"


def test_a_password_breaking_a_rule_is_refused_before_anything_is_made(demo):
    with pytest.raises(DomainError) as failure:
        issue(demo["person"], password="short1!")
    assert failure.value.code == "password_length"
    assert Certificate.select().count() == 0


# -- downloads ------------------------------------------------------------------------------

def test_a_download_link_works_once(demo):
    link = issue(demo["person"]).links[1]
    assert downloads.take(link.token).content[:1] == b"\x30"
    with pytest.raises(DomainError) as again:
        downloads.take(link.token)
    assert again.value.code == "download_used" and again.value.status == 410
    assert Download.get(Download.filename == link.filename).content is None


def test_a_download_link_expires_after_10_minutes_and_its_file_is_purged(demo):
    links = issue(demo["person"]).links
    move_clock(minutes=10, seconds=1)
    with pytest.raises(DomainError) as expired:
        downloads.take(links[0].token)
    assert expired.value.code == "download_expired"
    assert downloads.purge_expired() == len(links) - 1
    assert Download.select().where(Download.content.is_null(False)).count() == 0


# -- customers, audit, schema -----------------------------------------------------------------

def test_rrn_is_stored_only_as_hmac_and_mask(demo):
    person = Customer.get_by_id(demo["person"].id)
    assert person.rrn_masked == "900101-1******"
    assert "1234567" not in person.rrn_hmac


def test_csv_import_reports_bad_rows_by_line_and_imports_the_rest(app):
    csv_text = ("kind,name,rrn,phone,account,pin,email\n"
                "personal,이몽룡,910203-1234567,010-1111-2222,111-222-333444,1111,\n"
                "personal,성춘향,91xx,010-1111-3333,111-222-333445,1111,\n"
                "personal,변학도,920304-1234567,010-1111-4444,111-222-333446,12,\n"
                "personal,방자,930405-1234567,010-1111-5555,111-222-333447,2222,a@b.kr\n")
    report = customers.import_csv(csv_text, "test")
    assert [c.name for c in report.imported] == ["이몽룡", "방자"]
    assert report.errors == [(3, "rrn_format", "rrn"), (4, "pin_format", "pin")]


def test_every_state_change_is_in_a_hash_chain_that_detects_tampering(demo):
    issue(demo["person"])
    assert AuditEvent.select().count() >= 3
    assert audit.verify_chain() is None
    event = AuditEvent.select().order_by(AuditEvent.id).first()
    event.actor = "someone else"
    event.save()
    assert audit.verify_chain() == event.id


def test_a_version_1_database_upgrades_to_the_current_schema_in_place(app, demo):
    from models import db
    from models.migrations import SchemaVersion
    # Make the database what version 1 made: no columns or tables of later steps, recorded
    # as version 1.
    db.execute_sql("ALTER TABLE customer DROP COLUMN sessions_valid_from")
    db.execute_sql("ALTER TABLE certificate DROP COLUMN auto_renew_days")
    db.execute_sql("ALTER TABLE certificate DROP COLUMN renewal_started_at")
    db.execute_sql("DROP TABLE reminder")
    db.execute_sql("ALTER TABLE customer DROP COLUMN self_service_suspended_at")
    db.execute_sql("ALTER TABLE notification DROP COLUMN sealed")
    db.execute_sql("DROP INDEX certificate_crl_partition")
    db.execute_sql("ALTER TABLE certificate DROP COLUMN crl_partition")
    SchemaVersion.delete().where(SchemaVersion.version > 1).execute()
    assert current_version() == 1
    assert upgrade() == [version for version, _what, _step in MIGRATIONS if version > 1]
    assert "sessions_valid_from" in [c.name for c in db.get_columns("customer")]
    assert {"auto_renew_days", "renewal_started_at"} <= {
        c.name for c in db.get_columns("certificate")}
    assert db.table_exists("reminder")
    assert "self_service_suspended_at" in [c.name for c in db.get_columns("customer")]
    assert "sealed" in [c.name for c in db.get_columns("notification")]
    assert "crl_partition" in [c.name for c in db.get_columns("certificate")]
    assert Customer.get(Customer.code == "P0000001").rrn_masked == "900101-1******"


def test_a_version_11_database_gets_the_console_indexes_a_fresh_one_has(app, demo):
    from models import db
    from models.migrations import SchemaVersion

    def indexes():
        return {(table, index.name, tuple(index.columns), index.unique)
                for table in db.get_tables() for index in db.get_indexes(table)}
    fresh = indexes()
    for name in ("customer_name", "customer_representative", "customer_phone",
                 "notification_status_id", "auditevent_actor_id", "auditevent_action_id",
                 "auditevent_target_id", "auditevent_at_id"):
        db.execute_sql(f"DROP INDEX {name}")
    SchemaVersion.delete().where(SchemaVersion.version > 11).execute()
    assert upgrade() == [version for version, _what, _step in MIGRATIONS if version > 11]
    assert indexes() == fresh


def test_migrations_upgrade_an_older_database_in_place(app, demo):
    assert current_version() == MIGRATIONS[-1][0]
    assert upgrade() == []                                  # nothing to do twice
    from models import db

    def add_column(database):
        database.execute_sql("ALTER TABLE customer ADD COLUMN nickname TEXT")
    applied = upgrade(MIGRATIONS + [(99, "test step", add_column)])
    assert applied == [99]
    assert Customer.select().count() == 2                   # the data survived
    assert "nickname" in [c.name for c in db.get_columns("customer")]


def test_a_step_missing_below_the_latest_is_still_applied(app):
    """Branches number their steps apart, so a database can have 14 before 12 arrives: the
    missing step is applied then, once."""
    from models import db
    from models.migrations import SchemaVersion, applied_versions
    SchemaVersion.delete().where(SchemaVersion.version == 12).execute()
    db.execute_sql("DROP INDEX customer_phone")
    assert current_version() == MIGRATIONS[-1][0] and 12 not in applied_versions()
    assert upgrade() == [12]
    assert "customer_phone" in {index.name for index in db.get_indexes("customer")}
    assert upgrade() == [] and applied_versions() >= {v for v, _what, _step in MIGRATIONS}


def test_every_certificate_gets_its_own_subject_even_in_the_same_second(demo, monkeypatch):
    from services import secrets as service_secrets
    draws = iter(["1111", "1111", "2222"])          # the second issue draws a taken one first
    monkeypatch.setattr(service_secrets, "random_digits", lambda n: next(draws))
    moment = clock.now()
    monkeypatch.setattr(clock, "now", lambda: moment)  # both in the same second
    first = issue(demo["person"]).certificate
    second = issue(demo["person"], "personal-general").certificate
    assert first.subject.startswith("CN=홍길동()0011") and "1111," in first.subject
    assert "2222," in second.subject


def test_parallel_changes_each_append_once_to_one_unbroken_chain(app):
    """Twenty writers at once, each in its own connection and transaction: on SQLite the
    write lock queues them, on PostgreSQL the chain's advisory lock does; none fails, and the
    trail verifies."""
    import threading
    import time

    from models import db
    errors = []

    def write(number):
        try:
            with db.connection_context(), db.atomic():
                audit.record("test", "parallel.write", str(number))
                time.sleep(0.01)                   # hold the transaction open a moment
        except Exception as error:                 # any failure is reported below
            errors.append(error)
    writers = [threading.Thread(target=write, args=(n,)) for n in range(20)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=60)
    assert errors == []
    assert AuditEvent.select().where(AuditEvent.action == "parallel.write").count() == 20
    assert audit.verify_chain() is None
