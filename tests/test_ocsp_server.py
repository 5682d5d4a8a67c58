"""The OCSP responder's own server process (`python -m ocsp_server`, granian): started on a
free 127.0.0.1 port on the test's instance and database, it answers `openssl ocsp` good,
then revoked on the first question after a revocation made through the service, and answers
unknown, other-issuer, malformed and wrongly typed requests as the Flask path does."""
import os
import subprocess
import sys
import time
import urllib.error
from types import SimpleNamespace

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from models import Customer
from services import ca_store, issuance, status
from tests.conftest import REPO, free_port
from tests.test_ocsp_presigned import question
from tests.test_relying_party import (
    OPENSSL,
    fetch,
    get_ocsp,
    ocsp_response,
    openssl_ocsp,
    post_ocsp,
    throwaway_ca,
)

PASSWORD = "Blue!sky42x"



@pytest.fixture
def responder(app, database, tmp_path):
    """The server on the app's instance folder and database; its base URL."""
    env = {**os.environ, "CERTCENTER_INSTANCE": str(app.config["INSTANCE"]), **database}
    if not database:
        env.pop("DATABASE_URL", None)             # SQLite in the instance folder
    port = free_port()
    log = (tmp_path / "ocsp_server.log").open("wb")
    server = subprocess.Popen([sys.executable, "-m", "ocsp_server", "--port", str(port)],
                              cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, (tmp_path / "ocsp_server.log").read_text()
            try:
                fetch(url + "/pki/root.crt")
                break
            except (urllib.error.URLError, OSError):
                assert time.monotonic() < deadline, "ocsp_server did not start"
                time.sleep(0.2)
        yield SimpleNamespace(url=url, folder=tmp_path)
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


@pytest.fixture
def cert(app, demo, responder):
    """A personal-banking certificate, and the PEM files `openssl ocsp` reads."""
    issued = issuance.issue_certificate(
        Customer.get(Customer.code == "P0000001"), "personal-banking", idn="9001011234567",
        actor="test", password=PASSWORD, offer_downloads=False).certificate
    ca = ca_store.load_ca()
    for name, certificate in (("root.pem", ca.root_cert), ("issuing.pem", ca.issuing_cert),
                              ("ee.pem", x509.load_der_x509_certificate(bytes(issued.der)))):
        (responder.folder / name).write_bytes(certificate.public_bytes(
            serialization.Encoding.PEM))
    return issued


@pytest.mark.skipif(OPENSSL is None, reason="the openssl command is not installed")
def test_openssl_gets_good_then_revoked_on_the_first_question_after_a_revocation(
        responder, cert):
    modes = [("-no_nonce",), ("-sha256", "-no_nonce"), ()]      # stored; nonce: signed
    for options in modes:
        state, output = openssl_ocsp(responder, *options)
        assert state == "good", output
    status.revoke_certificate(cert, "key-compromise", actor="test")
    for options in modes:
        state, output = openssl_ocsp(responder, *options)
        assert state == "revoked", output
        assert "Reason: keyCompromise" in output, output


def test_unknown_other_issuer_malformed_and_wrong_type_answer_as_the_flask_path(
        app, responder, cert):
    client = app.test_client()
    issuing = ca_store.load_ca().issuing_cert
    never_issued = ocsp.OCSPRequestBuilder().add_certificate_by_hash(
        *status.pki_ocsp.issuer_hashes(issuing, hashes.SHA1()), 12345,
        hashes.SHA1()).build().public_bytes(serialization.Encoding.DER)
    foreign = ocsp.OCSPRequestBuilder().add_certificate_by_hash(
        *status.pki_ocsp.issuer_hashes(throwaway_ca()[0], hashes.SHA1()),
        int(cert.serial, 16), hashes.SHA1()).build().public_bytes(serialization.Encoding.DER)
    for der in (never_issued, foreign):
        for served in (post_ocsp(responder, der), get_ocsp(responder, der)):
            assert ocsp_response(served).certificate_status == ocsp.OCSPCertStatus.UNKNOWN
    for garbage in (b"\x30\x03\x02\x01", question(cert)[:-3]):
        code, headers, body = post_ocsp(responder, garbage)
        flask = client.post("/ocsp", data=garbage, content_type="application/ocsp-request")
        assert (code, body) == (flask.status_code, flask.data)
        assert ocsp_response((code, headers, body)).response_status == \
            ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    code, _headers, body = post_ocsp(responder, question(cert), "text/plain")
    assert (code, body) == (415, b"Content-Type must be application/ocsp-request\n")


def test_a_stored_answer_carries_the_same_bytes_and_headers_as_under_the_flask_app(
        app, responder, cert):
    client = app.test_client()
    der = question(cert)
    code, headers, body = post_ocsp(responder, der)
    local = client.post("/ocsp", data=der, content_type="application/ocsp-request")
    assert (code, body) == (200, local.data)
    for name in ("Content-Type", "Cache-Control", "X-Content-Type-Options"):
        assert headers[name] == local.headers[name], name
    code, headers, body = get_ocsp(responder, der)
    assert code == 200 and body == local.data
    assert headers["ETag"] and headers["Expires"]
    assert headers["Cache-Control"].endswith("public, no-transform, must-revalidate")
