"""Partitioned CRLs: each certificate issued since partitions names its partition's CRL
(/pki/crl/<n>.crl), which carries a critical issuingDistributionPoint for that URL; a status
change re-signs only that partition; the full CRL at /pki/issuing.crl keeps serving every
certificate, including those issued before partitions (their changes re-sign it at once), and
is re-signed when asked for while a change is not on it yet."""
import shutil
import subprocess
from email.utils import parsedate_to_datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from peewee import IntegrityError, fn

from models import CaParameter, Certificate, Crl, UnpublishedChange, db
from models.migrations import SchemaVersion, applied_versions, upgrade
from pki import lint as pki_lint
from pki.profile import urls_for
from services import ca_store, clock, issuance, jobs, settings, status
from tests.conftest import move_clock, remove_ca

OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="the openssl command is not installed")
PASSWORD = "Blue!sky42x"


def issue(customer, type_id="personal-banking") -> Certificate:
    return issuance.issue_certificate(customer, type_id, idn="9001011234567", actor="test",
                                      password=PASSWORD, offer_downloads=False).certificate


def cert_of(row) -> x509.Certificate:
    return x509.load_der_x509_certificate(bytes(row.der))


def crl_of(row) -> x509.CertificateRevocationList:
    return x509.load_der_x509_crl(bytes(row.der))


def crl_points(row) -> list[str]:
    points = cert_of(row).extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    return [name.value for point in points for name in point.full_name]


def publish_every_partition() -> dict:
    """partition -> (number, DER) of a freshly published CRL of each partition."""
    return {n: (crl.number, bytes(crl.der))
            for n in range(status.crl_partitions()) for crl in [status.publish_crl(n)]}


def latest_of_each() -> dict:
    return {n: (crl.number, bytes(crl.der)) for n in range(status.crl_partitions())
            for crl in [status.latest_crl(n)]}


def listed(serial: str, crl_row) -> bool:
    return crl_of(crl_row).get_revoked_certificate_by_serial_number(int(serial, 16)) is not None


def signed_per_scope() -> dict:
    """scope (partition, None for the full CRL) -> CRLs signed for it so far."""
    return dict(Crl.select(Crl.crl_partition, fn.COUNT(Crl.id)).group_by(Crl.crl_partition).tuples())


# -- what a certificate names, what a partition CRL says -----------------------------------

def test_a_new_certificate_names_its_partition_crl(app, demo):
    record = issue(demo["person"])
    n = int(record.serial, 16) % status.CRL_PARTITIONS_DEFAULT
    assert status.crl_partitions() == 16            # no setting in this database: the default
    assert crl_points(record) == [f"{settings.current().base_url}/pki/crl/{n}.crl"]
    assert record.crl_partition == n


def test_a_partition_crl_names_its_scope_and_lints_clean(app, demo):
    record = issue(demo["person"])
    status.revoke_certificate(record, "key-compromise", actor="test")  # reason + invalidity date
    n = record.crl_partition
    crl = crl_of(status.latest_crl(n))
    assert [entry.serial_number for entry in crl] == [int(record.serial, 16)]
    idp = crl.extensions.get_extension_for_class(x509.IssuingDistributionPoint)
    assert idp.critical
    assert idp.value.full_name == [x509.UniformResourceIdentifier(crl_points(record)[0])]
    assert idp.value.only_contains_user_certs and not idp.value.only_contains_ca_certs
    assert idp.value.only_some_reasons is None and not idp.value.indirect_crl
    assert pki_lint.lint_crl(crl) == []
    full = crl_of(status.latest_crl())
    with pytest.raises(x509.ExtensionNotFound):     # the full CRL covers every certificate
        full.extensions.get_extension_for_class(x509.IssuingDistributionPoint)
    assert crl.next_update_utc - crl.last_update_utc == full.next_update_utc - full.last_update_utc
    number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    assert number == status.latest_crl(n).number


def test_a_revocation_signs_only_its_partition_and_the_full_crl_when_asked_for(app, demo):
    record = issue(demo["person"])
    n = record.crl_partition
    client = app.test_client()
    before = publish_every_partition()
    old_full = client.get("/pki/issuing.crl")
    signed = signed_per_scope()
    status.revoke_certificate(record, "affiliation-changed", actor="test")
    after = signed_per_scope()
    assert {scope for scope in after if after[scope] != signed.get(scope)} == {n}
    assert after[n] == signed[n] + 1                    # one CRL signed in the request
    now = latest_of_each()
    assert {p for p in now if now[p] != before[p]} == {n} and now[n][0] == before[n][0] + 1
    assert listed(record.serial, status.latest_crl(n))
    other = (n + 1) % status.crl_partitions()
    assert len(crl_of(status.latest_crl(other))) == 0

    # The full CRL is signed again by the first download after the change, not before.
    assert status.crls_due() == [None]
    move_clock(seconds=1)
    full = client.get("/pki/issuing.crl", headers={
        "If-Modified-Since": old_full.headers["Last-Modified"],
        "If-None-Match": old_full.headers["ETag"]})
    assert full.status_code == 200
    crl = x509.load_der_x509_crl(full.data)
    assert crl.get_revoked_certificate_by_serial_number(int(record.serial, 16)) is not None
    assert (parsedate_to_datetime(full.headers["Last-Modified"])
            > parsedate_to_datetime(old_full.headers["Last-Modified"]))
    assert signed_per_scope()[None] == after[None] + 1
    again = client.get("/pki/issuing.crl",
                       headers={"If-Modified-Since": full.headers["Last-Modified"]})
    assert again.status_code == 304 and signed_per_scope()[None] == after[None] + 1
    assert status.crls_due() == [] and UnpublishedChange.select().count() == 0


def test_each_scope_keeps_its_own_rising_numbers_and_this_update(app, demo):
    full = status.publish_crl().number
    assert [status.publish_crl(3).number, status.publish_crl(3).number,
            status.publish_crl(5).number, status.publish_crl().number] == [1, 2, 1, full + 1]
    assert status.latest_crl(3).number == 2
    with pytest.raises(IntegrityError), db.atomic():    # what a second publisher cannot take
        Crl.create(number=2, crl_partition=3, this_update=clock.now(),
                       next_update=clock.now(), entries=0, der=b"")
    # Two CRLs of partition 3 in one second: the second's thisUpdate is a second later, but
    # another scope's CRL published meanwhile does not push it.
    rows = list(Crl.select().where(Crl.crl_partition == 3).order_by(Crl.number))
    assert rows[1].this_update > rows[0].this_update
    assert status.latest_crl(5).this_update <= clock.now()


def test_old_crls_are_pruned_per_scope(app, demo):
    for _ in range(status.CRLS_KEPT + 2):
        status.publish_crl(0)
    status.publish_crl()
    assert Crl.select().where(Crl.crl_partition == 0).count() == status.CRLS_KEPT
    assert Crl.select().where(Crl.crl_partition.is_null()).count() == 1


# -- served over HTTP ------------------------------------------------------------------------

def test_partition_crls_are_served_with_caching_headers_and_unknown_ones_are_404(app, demo):
    client = app.test_client()
    response = client.get("/pki/crl/7.crl")                 # none yet: published on request
    assert response.status_code == 200 and response.mimetype == "application/pkix-crl"
    crl = x509.load_der_x509_crl(response.data)
    assert len(crl) == 0
    assert parsedate_to_datetime(response.headers["Last-Modified"]) == crl.last_update_utc
    assert parsedate_to_datetime(response.headers["Expires"]) == crl.next_update_utc
    assert "must-revalidate" in response.headers["Cache-Control"]
    etag = response.headers["ETag"]
    assert client.get("/pki/crl/7.crl", headers={"If-None-Match": etag}).status_code == 304
    assert client.get("/pki/crl/7.crl").data == response.data      # not signed again
    for missing in ("/pki/crl/16.crl", "/pki/crl/256.crl", "/pki/crl/-1.crl",
                    "/pki/crl/x.crl", "/pki/crl/7"):
        answer = client.get(missing)
        assert answer.status_code == 404 and answer.mimetype == "text/html", missing
    assert client.get("/pki/issuing.crl").status_code == 200


# -- openssl verify -crl_check ---------------------------------------------------------------

def downloaded(app, url: str) -> bytes:
    """A CRL as a relying party downloads it."""
    response = app.test_client().get(url)
    assert response.status_code == 200, url
    return response.data


def openssl_verify(tmp_path, record, crl_der: bytes) -> subprocess.CompletedProcess:
    ca = ca_store.load_ca()
    (tmp_path / "chain.pem").write_bytes(b"".join(
        cert.public_bytes(serialization.Encoding.PEM) for cert in (ca.root_cert, ca.issuing_cert)))
    (tmp_path / "ee.pem").write_bytes(cert_of(record).public_bytes(serialization.Encoding.PEM))
    (tmp_path / "crl.pem").write_bytes(
        x509.load_der_x509_crl(crl_der).public_bytes(serialization.Encoding.PEM))
    return subprocess.run([OPENSSL, "verify", "-crl_check", "-CAfile", "chain.pem",
                           "-CRLfile", "crl.pem", "ee.pem"], cwd=tmp_path, capture_output=True,
                          text=True)


@needs_openssl
def test_openssl_checks_a_certificate_against_its_partition_crl(app, demo, tmp_path):
    record = issue(demo["person"])
    n = record.crl_partition
    done = openssl_verify(tmp_path, record, downloaded(app, f"/pki/crl/{n}.crl"))
    assert done.returncode == 0 and "ee.pem: OK" in done.stdout, done.stdout + done.stderr

    # Another partition's CRL does not cover it: openssl will not take its silence for "good".
    other = downloaded(app, f"/pki/crl/{(n + 1) % status.crl_partitions()}.crl")
    done = openssl_verify(tmp_path, record, other)
    assert done.returncode != 0
    assert "error 44 at 0 depth lookup: different CRL scope" in done.stderr, done.stdout + done.stderr

    downloaded(app, "/pki/issuing.crl")
    status.revoke_certificate(record, "key-compromise", actor="test")
    done = openssl_verify(tmp_path, record, downloaded(app, f"/pki/crl/{n}.crl"))
    assert done.returncode != 0
    assert "certificate revoked" in done.stdout + done.stderr, done.stdout + done.stderr
    # The full CRL too, signed again for this download.
    full = downloaded(app, "/pki/issuing.crl")
    done = openssl_verify(tmp_path, record, full)
    assert "certificate revoked" in done.stdout + done.stderr, done.stdout + done.stderr
    (tmp_path / "full.crl").write_bytes(full)
    text = subprocess.run([OPENSSL, "crl", "-inform", "DER", "-in", "full.crl", "-noout",
                           "-text"], cwd=tmp_path, capture_output=True, text=True)
    assert text.returncode == 0, text.stderr
    assert f"Serial Number: {record.serial.upper()}" in text.stdout
    assert "Key Compromise" in text.stdout and "Invalidity Date" in text.stdout


@needs_openssl
def test_a_certificate_from_before_partitions_still_verifies_with_the_full_crl(
        app, demo, tmp_path, monkeypatch):
    # Issued as before partitions: its CRL distribution point is the full CRL.
    monkeypatch.setattr(ca_store, "urls",
                        lambda crl_partition=None: urls_for(settings.current().base_url))
    old = issue(demo["person"], "personal-general")
    monkeypatch.undo()
    assert crl_points(old) == [f"{settings.current().base_url}/pki/issuing.crl"]
    assert old.crl_partition is None
    new = issue(demo["person"])

    for record in (old, new):             # the full CRL serves either kind
        done = openssl_verify(tmp_path, record, downloaded(app, "/pki/issuing.crl"))
        assert done.returncode == 0 and "ee.pem: OK" in done.stdout, done.stdout + done.stderr
    # No partition claims to cover the old one.
    done = openssl_verify(tmp_path, old,
                          downloaded(app, f"/pki/crl/{int(old.serial, 16) % 16}.crl"))
    assert "error 44 at 0 depth lookup: different CRL scope" in done.stderr, done.stdout + done.stderr

    before = publish_every_partition()
    signed = signed_per_scope()
    status.revoke_certificate(old, "cessation-of-operation", actor="test")
    # The CRL it names is signed again in the request, and only that one.
    after = signed_per_scope()
    assert {scope for scope in after if after[scope] != signed.get(scope)} == {None}
    assert after[None] == signed[None] + 1 and UnpublishedChange.select().count() == 0
    assert latest_of_each() == before             # only the full CRL lists it
    done = openssl_verify(tmp_path, old, downloaded(app, "/pki/issuing.crl"))
    assert "certificate revoked" in done.stdout + done.stderr, done.stdout + done.stderr
    assert signed_per_scope()[None] == after[None]     # the download signed nothing


# -- a publication is never lost ---------------------------------------------------------------

def test_a_crash_before_the_partition_is_published_is_caught_up_by_jobs_run(app, demo,
                                                                           monkeypatch):
    record = issue(demo["person"])
    n = record.crl_partition
    publish_every_partition()
    status.publish_crl()
    assert status.crls_due() == []

    def crash(*_scope):
        raise SystemExit("killed between the commit and the CRLs")
    monkeypatch.setattr(status, "publish_crl", crash)
    with pytest.raises(SystemExit):
        status.suspend_certificate(record, actor="test")
    monkeypatch.undo()
    assert not listed(record.serial, status.latest_crl(n))          # stale
    assert status.crls_due() == [n, None]
    plans = [task.plan for task in jobs.tasks(clock.now())]
    assert "Publish the CRLs of 1 partitions." in plans and "Publish a new CRL." in plans
    output = app.test_cli_runner().invoke(args=["jobs", "run"]).output
    assert "Published the CRLs of 1 partitions" in output and "Published CRL" in output
    assert listed(record.serial, status.latest_crl(n)) and listed(record.serial,
                                                                 status.latest_crl())
    assert status.crls_due() == [] and UnpublishedChange.select().count() == 0


def test_the_full_crl_after_a_partitioned_change_is_left_to_jobs_run_not_to_a_start(app, demo):
    record = issue(demo["person"])
    publish_every_partition()
    status.publish_crl()
    status.revoke_certificate(record, "superseded", actor="test")
    assert listed(record.serial, status.latest_crl(record.crl_partition))
    assert status.crls_due() == [None]
    assert status.publish_lost_changes() == []          # what a start does: nothing is lost
    output = app.test_cli_runner().invoke(args=["jobs", "run"]).output
    assert "Published CRL" in output and "partitions" not in output
    assert status.crls_due() == [] and UnpublishedChange.select().count() == 0
    assert listed(record.serial, status.latest_crl())


def test_jobs_refresh_every_partition_before_it_goes_stale(app, demo):
    runner = app.test_cli_runner()
    first = runner.invoke(args=["jobs", "run"]).output
    assert "Published the CRLs of 16 partitions" in first and "Published CRL" in first
    assert status.crls_due() == []
    move_clock(hours=11)
    assert status.crls_due() == []
    move_clock(hours=1, minutes=1)
    assert status.crls_due() == [*range(16), None]
    assert "Published the CRLs of 16 partitions" in runner.invoke(args=["jobs", "run"]).output
    assert all(status.latest_crl(n).next_update > clock.now() for n in range(16))


# -- the count, chosen at ca init --------------------------------------------------------------

def test_ca_init_chooses_the_partition_count(app, tmp_path):
    runner = app.test_cli_runner()
    remove_ca()
    for wrong in ("0", "257"):
        refused = runner.invoke(args=["ca", "init", "--root-out", str(tmp_path / "r"),
                                      "--new-root-passphrase", "--crl-partitions", wrong])
        assert refused.exit_code == 1 and "1에서 256 사이여야" in refused.output, refused.output
        assert not ca_store.exists()
    made = runner.invoke(args=["ca", "init", "--root-out", str(tmp_path / "r"),
                               "--new-root-passphrase", "--crl-partitions", "4"])
    assert made.exit_code == 0 and "CRL partitions: 4." in made.output, made.output
    assert CaParameter.get_by_id("crl_partitions").value == "4"
    again = runner.invoke(args=["ca", "init", "--crl-partitions", "8"])
    assert "nothing was changed" in again.output and "CRL partitions: 4." in again.output
    assert runner.invoke(args=["demo", "seed"]).exit_code == 0
    from models import Customer
    record = issue(Customer.get(Customer.code == "P0000001"))
    assert record.crl_partition == int(record.serial, 16) % 4
    assert crl_points(record)[0].endswith(f"/pki/crl/{record.crl_partition}.crl")
    client = app.test_client()
    assert client.get("/pki/crl/3.crl").status_code == 200
    assert client.get("/pki/crl/4.crl").status_code == 404
    assert "partitions: 4 (/pki/crl/0.crl to /pki/crl/3.crl)" in runner.invoke(
        args=["ca", "status"]).output


def test_a_database_from_before_partitions_upgrades_and_gets_16(app, demo):
    # What the versions before 13 made.
    for index in ("certificate_crl_partition", "certificate_crl_entries", "crl_full_number",
                  "crl_partition_number"):
        db.execute_sql(f"DROP INDEX {index}")
    db.execute_sql("CREATE INDEX certificate_status_not_after ON certificate (status, not_after)")
    db.execute_sql("CREATE UNIQUE INDEX crl_number ON crl (number)")
    status.publish_crl()
    for table in ("certificate", "crl", "unpublishedchange"):
        db.execute_sql(f"ALTER TABLE {table} DROP COLUMN crl_partition")
    db.execute_sql("DROP TABLE caparameter")
    SchemaVersion.delete().where(SchemaVersion.version == 13).execute()
    assert 13 not in applied_versions()
    assert upgrade() == [13]
    assert 13 in applied_versions() and upgrade() == []
    indexes = {index.name for index in db.get_indexes("certificate")}
    assert {"certificate_crl_partition", "certificate_crl_entries"} <= indexes
    assert "certificate_status_not_after" not in indexes        # the new one's prefix
    assert {index.name for index in db.get_indexes("crl")} >= {"crl_full_number",
                                                              "crl_partition_number"}
    full = Crl.select().order_by(Crl.number.desc()).first()       # the full CRL numbers on
    assert status.publish_crl().number == full.number + 1
    assert status.crl_partitions() == 16
    record = issue(demo["person"])
    assert record.crl_partition == int(record.serial, 16) % 16


def test_the_full_crl_lists_current_partitions_as_signed_and_stale_ones_from_the_rows(
        app, demo, monkeypatch):
    first = issue(demo["person"])
    status.revoke_certificate(first, "key-compromise", actor="test")     # its partition signed
    second = issue(demo["person"])                                        # reissue: another serial
    publish_every_partition()
    monkeypatch.setattr(status, "publish_crl", lambda *scope, **kwargs: None)
    status.suspend_certificate(second, actor="test")       # as if the process died: not signed
    monkeypatch.undo()
    assert not listed(second.serial, status.latest_crl(second.crl_partition))
    crl = x509.load_der_x509_crl(downloaded(app, "/pki/issuing.crl"))
    assert {entry.serial_number for entry in crl} == {int(first.serial, 16),
                                                      int(second.serial, 16)}
    held = crl.get_revoked_certificate_by_serial_number(int(second.serial, 16))
    assert held.extensions.get_extension_for_class(x509.CRLReason).value.reason \
        == x509.ReasonFlags.certificate_hold
    assert status.latest_crl().entries == 2 and pki_lint.lint_crl(crl) == []
