"""Several app hosts on one database (issue 12): two gunicorn servers on two ports share one
database (the CA and trust anchors in it) and the secrets in the environment, nothing else;
customers issue on either at once and an officer revokes on either, and both hosts' OCSP
answers see every revocation at once. Runs on SQLite (two processes, one file) and, when
CERTCENTER_TEST_DATABASE names a server, on PostgreSQL."""
import os
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyotp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from models import AuditEvent, Certificate, db
from pki import ca as pki_ca
from services import audit, ca_store, clock, customers, operators
from tests.conftest import free_port, fresh_app, sms_code
from tests.test_attempt_limits import Client

CUSTOMERS = 40
REVOKED = 20
PASSWORD = "Blue!sky42x"
OFFICER_PASSWORD = "quiet lantern orbit 42 maple"



@pytest.fixture
def hosts(tmp_path, ca_template, database):
    """Two gunicorn servers (2 workers each) that share one database and the instance secrets
    from the environment, and nothing else: each has an instance folder of its own, empty.
    Their base URLs. The test process reaches the same database directly."""
    application = fresh_app(tmp_path, ca_template, CERTCENTER_OPS="1", **database)
    db.connect(reuse_if_open=True)
    instance = Path(application.instance_path)
    shared = {**os.environ, "CERTCENTER_OPS": "1", "CERTCENTER_DEMO": "1",
              "DATABASE_URL": database.get("DATABASE_URL",
                                           f"sqlite:///{instance / 'certcenter.db'}"),
              "CERTCENTER_MASTER_KEY": (instance / "master.key").read_bytes().hex(),
              "SECRET_KEY": (instance / "secret_key").read_bytes().hex(),
              "CERTCENTER_CA_PASSPHRASE": (instance / "ca-passphrase").read_bytes().hex()}
    servers, urls = [], []
    for number in range(2):
        port = free_port()
        own = tmp_path / f"host{number}"
        servers.append(subprocess.Popen(
            [str(os.path.join(os.path.dirname(sys.executable), "gunicorn")), "-w", "2",
             "--timeout", "120", "-b", f"127.0.0.1:{port}", "app:create_app()"],
            env={**shared, "CERTCENTER_INSTANCE": str(own)},
            cwd=os.path.dirname(os.path.dirname(__file__)),
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
        urls.append(f"http://127.0.0.1:{port}")
    try:
        for url in urls:
            _wait_until_up(url)
        yield urls
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            server.wait(timeout=30)
        if not db.is_closed():
            db.close()
        clock.reset()
        ca_store.forget_ca()


def _wait_until_up(url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/pki/root.crt", timeout=5):
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not start")


def _customer(number: int) -> dict:
    """A customer of their own (no two flows share a phone's codes), and what they type."""
    typed = {"name": f"고객{number:02d}", "pin": "1234",
             "rrn": f"85{1 + number // 28:02d}{1 + number % 28:02d}-1000000",
             "account": f"3300000{number:05d}"}
    customer = customers.add_customer(customers.NewCustomer(
        kind="personal", phone=f"0109000{number:04d}", **typed), "test")
    return {"customer": customer, "typed": typed}


def _issue(base: str, person: dict) -> str:
    """A personal-banking certificate through every page of one host; where it ends."""
    client = Client(base)
    client.get("/issue/terms")
    steps = [("/verify/", person["typed"], "/verify/code"),
             ("/verify/code", None, "/issue/terms"),
             ("/issue/terms", {"agree": "y"}, "/issue/type"),
             ("/issue/type", {"cert_type": "personal-banking"}, "/issue/key"),
             ("/issue/key", {"key": "generate"}, "/issue/password"),
             ("/issue/password", {"password": PASSWORD, "password_again": PASSWORD},
              "/issue/check"),
             ("/issue/check", {}, "/issue/done")]
    for path, fields, expected in steps:
        status, landed, _ = client.submit(
            path, fields if fields is not None else {"code": sms_code(person["customer"])})
        assert landed == expected, (path, status, landed)
    return landed


def _officer(base: str) -> Client:
    """An RA officer logged in to one host's console."""
    secret = pyotp.random_base32()
    _, link = operators.add_operator("kim.ra", "ra-officer", "test")
    # Enrolled with the code of the step before (accepted: one step either way), so that
    # the login's code, of this step, is a new one.
    operators.complete_enrolment(link.rsplit("/", 1)[1], OFFICER_PASSWORD, secret,
                                 pyotp.TOTP(secret).at(clock.timestamp() - 30))
    client = Client(base)
    client.get("/ops/login")
    client.submit("/ops/login", {"name": "kim.ra", "password": OFFICER_PASSWORD})
    status, landed, _ = client.submit("/ops/login/code", {"code": pyotp.TOTP(secret).now()})
    assert landed == "/ops/", (status, landed)
    return client


def _ocsp_answer(base: str, cert: x509.Certificate, issuer: x509.Certificate):
    request = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1()).build()
    asked = urllib.request.Request(base + "/ocsp", data=request.public_bytes(
        serialization.Encoding.DER), headers={"Content-Type": "application/ocsp-request"})
    with urllib.request.urlopen(asked, timeout=10) as answer:
        return ocsp.load_der_ocsp_response(answer.read())


def _ocsp_status(base: str, cert: x509.Certificate, issuer: x509.Certificate):
    return _ocsp_answer(base, cert, issuer).certificate_status


def test_two_hosts_issue_and_revoke_at_once_on_one_database(hosts, tmp_path):
    people = [_customer(number) for number in range(CUSTOMERS)]

    # Forty issuances at once, split across the two hosts.
    with ThreadPoolExecutor(max_workers=8) as pool:
        done = list(pool.map(lambda pair: _issue(hosts[pair[0] % 2], pair[1]),
                             enumerate(people)))
    assert done == ["/issue/done"] * CUSTOMERS
    issued = list(Certificate.select())
    assert len({cert.serial for cert in issued}) == len(issued) == CUSTOMERS
    for person in people:
        assert Certificate.select().where((Certificate.customer == person["customer"])
                                          & (Certificate.status == "valid")).count() == 1

    # Twenty revocations at once by an officer on either host, each seen by the other
    # host's OCSP responder on the very next request.
    officer = _officer(hosts[0])
    keys = ca_store.load_ca()

    def revoke(pair):
        number, record = pair
        here, there = hosts[number % 2], hosts[(number + 1) % 2]
        session = Client(here)
        session.opener = officer.opener                  # the officer's cookies, this host
        session.get(f"/ops/certificates/{record.serial}/revoke")
        status, landed, _ = session.submit(f"/ops/certificates/{record.serial}/revoke",
                                           {"reason": "affiliation-changed", "note": ""})
        assert landed == f"/ops/certificates/{record.serial}", (status, landed)
        started = time.monotonic()
        cert = x509.load_der_x509_certificate(bytes(record.der))
        while _ocsp_status(there, cert, keys.issuing_cert) != ocsp.OCSPCertStatus.REVOKED:
            assert time.monotonic() - started < 1, f"{there} still says good"
            time.sleep(0.05)
        return True
    with ThreadPoolExecutor(max_workers=8) as pool:
        assert all(pool.map(revoke, enumerate(issued[:REVOKED])))
    assert Certificate.select().where(Certificate.status == "revoked").count() == REVOKED
    for record in issued[REVOKED:]:
        cert = x509.load_der_x509_certificate(bytes(record.der))
        for base in hosts:
            assert _ocsp_status(base, cert, keys.issuing_cert) == ocsp.OCSPCertStatus.GOOD
    assert AuditEvent.select().where(AuditEvent.action == "certificate.revoke").count() == REVOKED
    assert audit.verify_chain() is None

    # A new OCSP signer, made here, signs both hosts' answers within a second or so: the CA
    # is read from the database, and neither host wrote anything into its own folder.
    new_signer = ca_store.rotate_signer("ocsp", "test")
    cert = x509.load_der_x509_certificate(bytes(issued[-1].der))
    for base in hosts:
        started = time.monotonic()
        while pki_ca.fingerprint(_ocsp_answer(base, cert, keys.issuing_cert)
                                 .certificates[0]) != new_signer:
            assert time.monotonic() - started < 3, f"{base} still signs with the old signer"
            time.sleep(0.1)
    assert [list((tmp_path / f"host{n}").iterdir()) for n in range(2)] == [[], []]


def test_the_master_key_comes_from_the_environment_when_given(tmp_path):
    from app import create_app
    from services import settings
    key = bytes(range(32))
    create_app({"CERTCENTER_INSTANCE": str(tmp_path / "a"), "TESTING": True,
                "CERTCENTER_MASTER_KEY": key.hex().upper()})
    assert settings.current().master_key == key
    assert not (tmp_path / "a" / "master.key").exists()
    for wrong in ("", "00" * 31, "zz" * 32):
        with pytest.raises(RuntimeError, match="64 hex digits"):
            create_app({"CERTCENTER_INSTANCE": str(tmp_path / "b"), "TESTING": True,
                        "CERTCENTER_MASTER_KEY": wrong})
