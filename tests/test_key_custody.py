"""Key custody: the root is offline (its key only in the folder `ca init` wrote it to, under a
passphrase nothing stores), the issuing CA and OCSP signer keys are in files or in a PKCS#11
token, and the key ceremonies (root CRL, new issuing CA certificate, moving an online root
out) do what an operator and a relying party expect. Run once per signer backend."""
import json
import shutil
import subprocess

import pkcs11
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.x509 import ocsp

from app import create_app
from models import AuditEvent, Certificate, db
from pki import ca as pki_ca
from pki import lint as pki_lint
from pki import ocsp as pki_ocsp
from pki import signer as pki_signer
from pki.errors import PkiError
from services import audit, ca_store, ceremony, clock, issuance, jobs, settings, status, trust
from tests.conftest import CA_ROWS, ROOT_PASSPHRASE, move_clock, remove_ca
from tests.test_status import ask, crl_now

pytestmark = pytest.mark.both_backends

PASSWORD = "Blue!sky42x"


def issue(demo):
    return issuance.issue_certificate(demo["person"], "personal-banking", idn="9001011234567",
                                      actor="test", password=PASSWORD,
                                      offer_downloads=False).certificate


def cli(app, *args):
    return app.test_cli_runner().invoke(args=list(args))


def passphrase_file(tmp_path, passphrase=ROOT_PASSPHRASE):
    path = tmp_path / "root-passphrase"
    path.write_bytes(passphrase + b"\n")
    return str(path)


def pem(path, *items):
    path.write_bytes(b"".join(
        item.public_bytes(serialization.Encoding.PEM) for item in items))
    return path


def ask_about_issuing_ca(algorithm=hashes.SHA1()):
    keys = ca_store.load_ca()
    request = ocsp.OCSPRequestBuilder().add_certificate(
        keys.issuing_cert, keys.root_cert, algorithm).build()
    return ocsp.load_der_ocsp_response(
        status.ocsp_answer(request.public_bytes(serialization.Encoding.DER)).der)


# -- where the keys are --------------------------------------------------------------------

def test_no_private_key_of_the_root_is_in_the_instance(app, root_key, signer_backend):
    folder = app.config["INSTANCE"]
    everything = b"".join(p.read_bytes() for p in folder.rglob("*") if p.is_file())
    assert b"PRIVATE KEY" not in everything.replace(b"ENCRYPTED PRIVATE KEY", b"")
    assert not list(folder.rglob("root.key")) and ROOT_PASSPHRASE not in everything
    # The root key is where ca init put it, encrypted, and opens with its passphrase only.
    assert root_key.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert oct(root_key.stat().st_mode & 0o777) == "0o600"
    opened = ceremony.open_root(root_key, ROOT_PASSPHRASE)
    assert opened.public_key() == ca_store.load_ca().root_cert.public_key()
    online = set(ca_store.names(""))
    kept, other = (".p11", ".key") if signer_backend == "pkcs11" else (".key", ".p11")
    assert {role + kept for role in ca_store.ONLINE_KEYS} <= online
    assert not {role + other for role in ca_store.ONLINE_KEYS} & online


@pytest.mark.backends("pkcs11")
def test_keys_in_the_token_are_sensitive_and_never_extractable(app):
    keys = ca_store.load_ca()
    session = ca_store.token().session()
    for signer, cert in ((keys.issuing_key, keys.issuing_cert), (keys.ocsp_key, keys.ocsp_cert),
                         (keys.cmp_key, keys.cmp_cert)):
        private = session.get_key(object_class=pkcs11.ObjectClass.PRIVATE_KEY, id=signer.cka_id)
        assert private[pkcs11.Attribute.SENSITIVE] is True
        assert private[pkcs11.Attribute.EXTRACTABLE] is False
        assert private.label.startswith("certcenter-")
        assert signer.public_key() == cert.public_key()


def test_with_the_root_key_moved_away_everything_online_keeps_working(app, demo, root_key,
                                                                      tmp_path):
    shutil.move(root_key.parent, tmp_path / "in-the-safe")
    record = issue(demo)
    assert ask(record).certificate_status == ocsp.OCSPCertStatus.GOOD
    status.revoke_certificate(record, "key-compromise", actor="test")
    assert ask(record).certificate_status == ocsp.OCSPCertStatus.REVOKED
    assert crl_now().get_revoked_certificate_by_serial_number(int(record.serial, 16))
    assert ca_store.rotate_signer("ocsp", "test")
    assert ask(record).certificate_status == ocsp.OCSPCertStatus.REVOKED
    assert cli(app, "jobs", "run").exit_code == 0
    shutil.move(tmp_path / "in-the-safe", root_key.parent)


# -- the CMP signer ---------------------------------------------------------------------------

def test_the_cmp_signer_speaks_for_the_issuing_ca_and_is_made_when_an_older_ca_lacks_it(app):
    keys = ca_store.load_ca()
    cert, signer = ca_store.cmp_signer()
    assert cert.subject.rfc4514_string() == "CN=CertCenter CMP Signer,O=CertCenter,C=KR"
    assert cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value == \
        x509.ExtendedKeyUsage([pki_ca.ID_KP_CMC_CA])
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and not usage.key_cert_sign
    cert.verify_directly_issued_by(keys.issuing_cert)
    assert signer.public_key() == cert.public_key()
    assert (cert.not_valid_after_utc - cert.not_valid_before_utc).days == ca_store.SIGNER_DAYS
    assert pki_lint.lint_certificate(cert) == []

    for name in ("cmp.crt", "cmp.key", "cmp.p11"):             # a CA made before CMP
        ca_store.delete(name)
    assert ca_store.load_ca().cmp_cert is None
    planned = [task.plan for task in jobs.tasks(clock.now())]
    assert "Issue a new CMP signer." in planned
    ran = cli(app, "jobs", "run").output
    assert "New CMP signer, SHA-256" in ran
    made = ca_store.load_ca().cmp_cert
    assert made is not None and made != cert
    assert "New CMP signer" not in cli(app, "jobs", "run").output
    assert AuditEvent.select().where(AuditEvent.action == "cmp_signer.rotate").count() == 1
    move_clock(days=ca_store.SIGNER_DAYS - 6)
    assert "New CMP signer, SHA-256" in cli(app, "jobs", "run").output


# -- what the issuing CA certificate says, and the answers about it --------------------------

def test_the_issuing_ca_names_the_roots_crl_its_certificate_and_the_responder(app):
    issuing, urls = ca_store.load_ca().issuing_cert, ca_store.urls()
    points = issuing.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert [name.value for point in points for name in point.full_name] == [urls.root_crl]
    access = issuing.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    assert {(a.access_method, a.access_location.value) for a in access} == {
        (x509.AuthorityInformationAccessOID.OCSP, urls.ocsp),
        (x509.AuthorityInformationAccessOID.CA_ISSUERS, urls.root_cert)}
    assert pki_lint.lint_certificate(issuing) == []


def test_the_root_crl_is_served_signed_by_the_root_with_caching_headers(app):
    response = app.test_client().get("/pki/root.crl")
    assert response.status_code == 200 and response.mimetype == "application/pkix-crl"
    crl = x509.load_der_x509_crl(response.data)
    assert crl.is_signature_valid(ca_store.load_ca().root_cert.public_key())
    assert crl.issuer == ca_store.load_ca().root_cert.subject and len(crl) == 0
    assert pki_lint.lint_crl(crl) == []
    assert response.headers["ETag"] and response.headers["Last-Modified"]
    assert "max-age=60" in response.headers["Cache-Control"]
    assert (crl.next_update_utc - crl.last_update_utc).days == ceremony.ARL_DAYS
    again = app.test_client().get("/pki/root.crl",
                                  headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304


@pytest.mark.parametrize("algorithm", [hashes.SHA1(), hashes.SHA256()], ids=["sha1", "sha256"])
def test_the_responder_answers_for_the_issuing_ca_with_the_roots_presigned_answer(app,
                                                                                  algorithm):
    response = ask_about_issuing_ca(algorithm)
    assert response.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
    assert response.certificate_status == ocsp.OCSPCertStatus.GOOD
    assert response.serial_number == ca_store.load_ca().issuing_cert.serial_number
    root_crl = x509.load_der_x509_crl(app.test_client().get("/pki/root.crl").data)
    assert response.next_update_utc == root_crl.next_update_utc      # as long as the ARL
    ca_store.load_ca().root_cert.public_key().verify(
        response.signature, response.tbs_response_bytes, padding.PKCS1v15(), hashes.SHA256())


def test_a_root_issued_certificate_without_an_answer_is_unauthorized(app):
    keys = ca_store.load_ca()
    stranger = keys.issuing_cert.serial_number + 1
    request = (ocsp.OCSPRequestBuilder().add_certificate_by_hash(
        *pki_ocsp.issuer_hashes(keys.root_cert, hashes.SHA1()), stranger, hashes.SHA1()).build())
    answer = status.ocsp_answer(request.public_bytes(serialization.Encoding.DER))
    assert ocsp.load_der_ocsp_response(answer.der).response_status == \
        ocsp.OCSPResponseStatus.UNAUTHORIZED


def test_openssl_verifies_the_chain_with_both_crls(app, demo, tmp_path):
    record = x509.load_der_x509_certificate(bytes(issue(demo).der))
    keys = ca_store.load_ca()
    client = app.test_client()
    crls = [x509.load_der_x509_crl(client.get(url).data)
            for url in ("/pki/root.crl", "/pki/issuing.crl")]
    pem(tmp_path / "root.pem", keys.root_cert)
    pem(tmp_path / "issuing.pem", keys.issuing_cert)
    pem(tmp_path / "ee.pem", record)
    pem(tmp_path / "crls.pem", *crls)
    command = ["openssl", "verify", "-crl_check_all", "-CAfile", "root.pem", "-untrusted",
               "issuing.pem", "-CRLfile", "crls.pem", "ee.pem"]
    run = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 0 and run.stdout.strip() == "ee.pem: OK", run.stdout + run.stderr
    # Without the root's CRL, the issuing CA's status is unknown and openssl refuses the chain.
    pem(tmp_path / "crls.pem", crls[1])
    run = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode != 0 and "unable to get certificate CRL" in run.stdout + run.stderr


def test_openssl_checks_the_issuing_cas_answer_against_the_root(app, tmp_path):
    keys = ca_store.load_ca()
    request = ocsp.OCSPRequestBuilder().add_certificate(
        keys.issuing_cert, keys.root_cert, hashes.SHA1()).build()
    (tmp_path / "answer.der").write_bytes(
        status.ocsp_answer(request.public_bytes(serialization.Encoding.DER)).der)
    pem(tmp_path / "root.pem", keys.root_cert)
    pem(tmp_path / "issuing.pem", keys.issuing_cert)
    run = subprocess.run(["openssl", "ocsp", "-respin", "answer.der", "-issuer", "root.pem",
                          "-CAfile", "root.pem", "-cert", "issuing.pem"],
                         cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "Response verify OK" in run.stderr and "issuing.pem: good" in run.stdout


# -- ceremonies ----------------------------------------------------------------------------

def test_sign_root_crl_renews_the_crl_and_the_answers(app, root_key, tmp_path):
    before = ca_store.root_crl()
    move_clock(days=10)
    result = cli(app, "ca", "sign-root-crl", "--root-key", str(root_key),
                 "--root-passphrase-file", passphrase_file(tmp_path), "--days", "90")
    assert result.exit_code == 0, result.output
    after = ca_store.root_crl()
    assert after.number == before.number + 1 and f"Root CRL number {after.number}" in result.output
    assert (after.next_update - after.this_update).days == 90
    assert ask_about_issuing_ca().next_update_utc.replace(tzinfo=None) == after.next_update
    assert AuditEvent.get(AuditEvent.action == "ca.root_crl").target == str(after.number)


@pytest.mark.parametrize("case, message", [
    ("wrong passphrase", "의 암호문이 맞지 않습니다"),
    ("missing file", "읽을 수 없습니다(No such file or directory)"),
    ("another root", "이 인증기관 루트 인증서의 키가 아닙니다"),
])
def test_a_ceremony_with_the_wrong_key_or_passphrase_says_so_and_changes_nothing(
        app, root_key, tmp_path, case, message):
    key, passphrase = root_key, ROOT_PASSPHRASE
    if case == "wrong passphrase":
        passphrase = b"not the passphrase at all"
    elif case == "missing file":
        key = tmp_path / "nowhere.key"
    else:
        key = tmp_path / "other.key"
        key.write_bytes(pki_signer.FileSigner.generate().encrypted_pem(ROOT_PASSPHRASE))
    before = ca_store.root_crl()
    result = cli(app, "ca", "sign-root-crl", "--root-key", str(key),
                 "--root-passphrase-file", passphrase_file(tmp_path, passphrase))
    assert result.exit_code == 1 and message in result.output, result.output
    assert "Traceback" not in result.output
    assert ca_store.root_crl() == before


def test_jobs_run_warns_thirty_days_before_the_root_crl_runs_out(app):
    assert "root CA" not in cli(app, "jobs", "run").output
    move_clock(days=ceremony.ARL_DAYS - 31)
    assert "root CA's CRL runs out" not in cli(app, "jobs", "run", "--dry-run").output
    move_clock(days=2)
    output = cli(app, "jobs", "run").output
    assert "Warning: The root CA's CRL runs out on" in output and "sign-root-crl" in output


def test_new_issuing_keeps_key_and_name_and_old_certificates_keep_verifying(app, demo,
                                                                            root_key, tmp_path):
    old_record = x509.load_der_x509_certificate(bytes(issue(demo).der))
    old = ca_store.load_ca().issuing_cert
    result = cli(app, "ca", "new-issuing", "--root-key", str(root_key),
                 "--root-passphrase-file", passphrase_file(tmp_path))
    assert result.exit_code == 0, result.output
    new = ca_store.load_ca().issuing_cert
    assert new.serial_number != old.serial_number and f"{new.serial_number:x}" in result.output
    assert new.subject == old.subject and new.public_key() == old.public_key()
    old_record.verify_directly_issued_by(new)
    # Both the old and the new issuing CA certificates have a good answer from the root.
    for cert in (old, new):
        request = ocsp.OCSPRequestBuilder().add_certificate(
            cert, ca_store.load_ca().root_cert, hashes.SHA1()).build()
        answer = ocsp.load_der_ocsp_response(
            status.ocsp_answer(request.public_bytes(serialization.Encoding.DER)).der)
        assert answer.certificate_status == ocsp.OCSPCertStatus.GOOD
    assert AuditEvent.get(AuditEvent.action == "ca.new_issuing").target
    assert audit.verify_chain() is None


def test_an_online_root_moves_out_with_one_command(app, root_key, tmp_path):
    # An instance from before: the root key in the instance folder under the CA passphrase,
    # an issuing CA certificate naming nothing, no root CRL.
    root = ceremony.open_root(root_key, ROOT_PASSPHRASE)
    ca_store.write("root.key", root.encrypted_pem(settings.current().ca_passphrase))
    for name in ["root.crl", *ca_store.names("root-ocsp/")]:
        ca_store.delete(name)
    before = ca_store.load_ca().issuing_cert
    warned = cli(app, "jobs", "run").output
    assert "move-root-out" in warned, warned

    out = tmp_path / "usb"
    result = cli(app, "ca", "move-root-out", "--root-out", str(out),
                 "--root-passphrase-file", passphrase_file(tmp_path, b"a new long passphrase"))
    assert result.exit_code == 0, result.output
    assert ca_store.read("root.key") is None
    assert ceremony.open_root(out / "root.key", b"a new long passphrase")
    after = ca_store.load_ca().issuing_cert
    assert after.subject == before.subject and after.public_key() == before.public_key()
    assert after.extensions.get_extension_for_class(x509.CRLDistributionPoints)
    assert ca_store.root_crl() is not None
    assert ask_about_issuing_ca().certificate_status == ocsp.OCSPCertStatus.GOOD
    assert "move-root-out" not in cli(app, "jobs", "run").output
    again = cli(app, "ca", "move-root-out", "--root-out", str(tmp_path / "again"),
                "--root-passphrase-file", passphrase_file(tmp_path))
    assert again.exit_code == 1 and "옮길 것이 없습니다" in again.output


def test_ca_init_refuses_a_short_root_passphrase_and_an_occupied_folder(app, tmp_path):
    remove_ca()
    short = cli(app, "ca", "init", "--root-out", str(tmp_path / "r"),
                "--root-passphrase-file", passphrase_file(tmp_path, b"short"))
    assert short.exit_code == 1 and "12자 이상이어야 합니다" in short.output
    made = cli(app, "ca", "init", "--root-out", str(tmp_path / "r"), "--new-root-passphrase")
    assert made.exit_code == 0, made.output
    assert "Root key passphrase (shown once, not stored):" in made.output
    shown = made.output.rsplit(": ", 1)[1].strip().encode()
    assert ceremony.open_root(tmp_path / "r" / "root.key", shown)
    assert shown not in b"".join(p.read_bytes() for p in app.config["INSTANCE"].rglob("*")
                                 if p.is_file())
    remove_ca()
    occupied = cli(app, "ca", "init", "--root-out", str(tmp_path / "r"),
                   "--root-passphrase-file", passphrase_file(tmp_path))
    assert occupied.exit_code == 1 and "이미 루트 키가 있습니다" in occupied.output


# -- status, and a token that cannot sign ----------------------------------------------------

def test_ca_status_shows_backend_key_ids_both_crls_and_signature_counts(app, demo,
                                                                       signer_backend):
    record = issue(demo)
    ask(record)
    ask(record, nonce=True)
    crl = status.publish_crl()
    output = cli(app, "ca", "status").output
    keys = ca_store.load_ca()
    assert f"Signer backend: {signer_backend}" in output
    assert f"key: {keys.issuing_key.key_id}" in output and f"key: {keys.ocsp_key.key_id}" in output
    assert "key: offline" in output
    if signer_backend == "pkcs11":
        assert f"id={keys.issuing_key.cka_id.hex()}" in output
    assert f"Root CRL (ARL): number {ca_store.root_crl().number}" in output
    assert f"CRL: number {crl.number}, nextUpdate" in output
    # Two pre-signed at issuance (SHA-1 and SHA-256 CertIDs), served from storage to the
    # first question; one fresh for the nonce.
    assert "1 certificates" in output and "3 OCSP responses" in output
    assert "ocsp     CN=CertCenter OCSP Responder" in output


@pytest.mark.backends("pkcs11")
def test_a_signing_key_missing_from_the_token_gives_a_503_and_changes_nothing(app, demo):
    ca_store.write("issuing.p11", b"00" * 16 + b"\n")
    ca_store.forget_ca()
    with pytest.raises(PkiError) as failed:
        issue(demo)
    assert failed.value.code == "signer_unavailable"
    assert Certificate.select().count() == 0
    response = app.test_client().get("/pki/issuing.crl")
    assert response.status_code == 503
    assert "서명할 수 없습니다" in response.get_data(as_text=True)


# -- from the instance folder into the database ----------------------------------------------

def test_a_ca_kept_in_the_instance_folder_moves_into_the_database(tmp_path, ca_template,
                                                                   backend_settings):
    # An instance as version 14 left it: the CA in ca/, another bank's root in trust/.
    instance = tmp_path / "instance"
    for row in CA_ROWS[ca_template]:
        path = instance / "ca" / row["name"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(row["data"])
    for name in ("ca-passphrase", "master.key", "secret_key"):
        shutil.copy2(ca_template / name, instance / name)
    other_root, _ = pki_ca.create_root("Other Bank", clock.aware(clock.now()))
    (instance / "trust").mkdir()
    pem(instance / "trust" / f"{trust.fingerprint(other_root)}.pem", other_root)
    ca_store.forget_ca()
    config = {"CERTCENTER_INSTANCE": str(instance), "TESTING": True, **backend_settings}

    app = create_app(config)
    with db.connection_context():
        assert set(ca_store.names("")) == {row["name"] for row in CA_ROWS[ca_template]}
        assert trust.anchors() == [other_root]
        adopted = AuditEvent.get(AuditEvent.action == "ca.adopt")
        assert json.loads(adopted.details)["files"] == len(CA_ROWS[ca_template])
    assert not (instance / "ca").exists() and not (instance / "trust").exists()
    client = app.test_client()
    root = ca_store.load_ca().root_cert
    assert client.get("/pki/root.crt").data == root.public_bytes(serialization.Encoding.DER)
    assert x509.load_der_x509_crl(client.get("/pki/root.crl").data).is_signature_valid(
        root.public_key())

    # Started again with a stray folder beside it: the database's CA stays, the folder too.
    (instance / "ca").mkdir()
    (instance / "ca" / "root.crt").write_bytes(b"something else")
    create_app(config)
    with db.connection_context():
        assert AuditEvent.select().where(AuditEvent.action == "ca.adopt").count() == 1
        assert ca_store.load_ca().root_cert == root
    assert (instance / "ca" / "root.crt").exists()
