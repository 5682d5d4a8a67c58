"""What relying parties see, over real HTTP: `openssl ocsp`, `openssl verify -crl_check`,
pyhanko-certvalidator following the URLs written into the certificate, pkilint on what is
served, and hostile or broken input to the responder.

The app is served on 127.0.0.1 with CERTCENTER_BASE_URL set to the server's own address, so
the CRL distribution point and AIA URLs inside issued certificates point at it.
"""
import asyncio
import base64
import concurrent.futures
import datetime as dt
import hashlib
import http.client
import os
import re
import shutil
import subprocess
import threading
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest
from asn1crypto import algos as asn1_algos
from asn1crypto import core as asn1_core
from asn1crypto import ocsp as asn1_ocsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID
from pyhanko_certvalidator import CertificateValidator, ValidationContext
from pyhanko_certvalidator.errors import RevokedError
from pyhanko_certvalidator.fetchers.aiohttp_fetchers import AIOHttpFetcherBackend
from pyhanko_certvalidator.policy_decl import CertRevTrustPolicy, RevocationCheckingPolicy, RevocationCheckingRule
from werkzeug.serving import make_server

from models import Customer, db
from pki import lint as pki_lint
from pki.ocsp import MAX_REQUEST_BYTES
from services import ca_store, ceremony, clock, issuance, status
from tests.conftest import ROOT_PASSPHRASE, VECTORS, fresh_app

PASSWORD = "Blue!sky42x"
OPENSSL = shutil.which("openssl")
NO_PROXY_ENV = {**{k: v for k, v in os.environ.items() if "proxy" not in k.lower()},
                "no_proxy": "127.0.0.1,localhost", "NO_PROXY": "127.0.0.1,localhost"}
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="the openssl command is not installed")


# -- the live server --------------------------------------------------------------------------

@dataclass
class Live:
    url: str
    app: object
    folder: Path
    hits: list = field(default_factory=list)     # (method, path) of every request served

    def paths(self, prefix: str) -> list:
        return [hit for hit in self.hits if hit[1].startswith(prefix)]


@pytest.fixture
def rp(tmp_path, ca_template, root_key):
    """The app, with its base URL set to the address it is really served on.

    The server is bound first (port 0: no race for a "free" port) with a dispatcher in front,
    then the app is created with that port in CERTCENTER_BASE_URL and plugged in. A key
    ceremony re-issues the issuing CA certificate so that it, too, names this address for its
    status (the root's CRL and OCSP answers)."""
    holder = {}
    hits = []

    def dispatch(environ, start_response):
        hits.append((environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")))
        return holder["app"](environ, start_response)

    server = make_server("127.0.0.1", 0, dispatch, threaded=True)
    base_url = f"http://127.0.0.1:{server.port}"

    application = fresh_app(tmp_path, ca_template, CERTCENTER_BASE_URL=base_url)
    holder["app"] = application
    db.connect(reuse_if_open=True)
    ceremony.new_issuing(root_key, ROOT_PASSPHRASE, actor="test")
    result = application.test_cli_runner().invoke(args=["demo", "seed"])
    assert result.exit_code == 0, result.output

    folder = tmp_path / "rp"
    folder.mkdir()
    ca = ca_store.load_ca()
    for name, cert in (("root.pem", ca.root_cert), ("issuing.pem", ca.issuing_cert),
                       ("ocsp.pem", ca.ocsp_cert)):
        (folder / name).write_bytes(cert.public_bytes(serialization.Encoding.PEM))

    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield Live(base_url, application, folder, hits)
    server.shutdown()
    thread.join()
    server.server_close()
    ca_store.write_signature_counts()
    if not db.is_closed():
        db.close()
    clock.reset()
    ca_store.forget_ca()


@pytest.fixture
def record(rp):
    """A freshly issued personal-banking certificate, its PEM in rp.folder / "ee.pem"."""
    person = Customer.get(Customer.code == "P0000001")
    issued = issuance.issue_certificate(person, "personal-banking", idn="9001011234567",
                                        actor="test", password=PASSWORD, offer_downloads=False)
    (rp.folder / "ee.pem").write_bytes(cert_of(issued.certificate).public_bytes(
        serialization.Encoding.PEM))
    return issued.certificate


def cert_of(row) -> x509.Certificate:
    return x509.load_der_x509_certificate(bytes(row.der))


def fetch(url: str, data: bytes | None = None, headers: dict | None = None,
          method: str | None = None):
    """(status, headers, body) of one HTTP request; error statuses are returned, not raised."""
    request = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    try:
        with _opener.open(request, timeout=15) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.headers, error.read()


def ocsp_request(cert, issuer, algorithm=hashes.SHA1(), nonce: bytes | None = None) -> bytes:
    builder = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, algorithm)
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build().public_bytes(serialization.Encoding.DER)


def post_ocsp(rp, body: bytes, content_type="application/ocsp-request"):
    return fetch(rp.url + "/ocsp", data=body, headers={"Content-Type": content_type})


def get_ocsp(rp, request_der: bytes):
    """RFC 5019 §5: GET {url}/{url-encoding of base64 of the DER request}."""
    encoded = urllib.parse.quote(base64.b64encode(request_der).decode(), safe="")
    return fetch(f"{rp.url}/ocsp/{encoded}")


def ocsp_response(answer) -> ocsp.OCSPResponse:
    code, headers, body = answer
    assert code == 200, (code, body[:200])
    assert headers.get_content_type() == "application/ocsp-response"
    return ocsp.load_der_ocsp_response(body)


# -- 1. openssl ocsp --------------------------------------------------------------------------

def openssl(rp, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([OPENSSL, *args], cwd=rp.folder, capture_output=True, text=True,
                          timeout=60, env=NO_PROXY_ENV)


def openssl_ocsp(rp, *extra: str) -> tuple[str, str]:
    """The certificate's status as `openssl ocsp` reports it, and everything it printed.
    Fails unless openssl verified the response's signature and delegation."""
    done = openssl(rp, "ocsp", *extra, "-issuer", "issuing.pem", "-cert", "ee.pem",
                   "-url", rp.url + "/ocsp", "-CAfile", "root.pem", "-resp_text",
                   "-timeout", "20")    # a CertID digest option must come before -cert
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "Response verify OK" in output, output
    assert "WARNING" not in output, output              # e.g. "no nonce in response"
    found = re.search(r"^ee\.pem: (\w+)$", done.stdout, re.M)
    assert found, output
    return found.group(1), output


@needs_openssl
@pytest.mark.parametrize("options", [(), ("-no_nonce",), ("-sha256",), ("-sha256", "-no_nonce")],
                         ids=["nonce", "no-nonce", "sha256", "sha256-no-nonce"])
def test_openssl_ocsp_good_then_revoked(rp, record, options):
    state, output = openssl_ocsp(rp, *options)
    assert state == "good", output
    status.revoke_certificate(record, "key-compromise", actor="test")
    state, output = openssl_ocsp(rp, *options)
    assert state == "revoked", output
    assert re.search(r"^\s*Reason: keyCompromise$", output, re.M), output


@needs_openssl
def test_openssl_ocsp_through_suspension_and_resumption(rp, record):
    assert openssl_ocsp(rp, "-no_nonce")[0] == "good"              # cached by the responder
    status.suspend_certificate(record, actor="test")
    for options in [("-no_nonce",), ()]:
        state, output = openssl_ocsp(rp, *options)
        assert state == "revoked", output
        assert re.search(r"^\s*Reason: certificateHold$", output, re.M), output
    status.resume_certificate(record, actor="test")
    for options in [("-no_nonce",), (), ("-sha256",)]:
        state, output = openssl_ocsp(rp, *options)
        assert state == "good", output


@needs_openssl
def test_openssl_trusts_the_delegated_responder_only_through_the_ca(rp, record):
    # -VAfile pins the responder certificate explicitly: verification still succeeds.
    state, output = openssl_ocsp(rp, "-VAfile", "ocsp.pem")
    assert state == "good", output
    # Against an unrelated trust anchor the same response must not verify.
    (rp.folder / "other.pem").write_bytes(throwaway_ca()[0].public_bytes(
        serialization.Encoding.PEM))
    done = openssl(rp, "ocsp", "-issuer", "issuing.pem", "-cert", "ee.pem",
                   "-url", rp.url + "/ocsp", "-CAfile", "other.pem", "-timeout", "20")
    assert "Response verify OK" not in done.stdout + done.stderr


def test_ocsp_get_form_is_cacheable_per_rfc_5019(rp, record):
    ca = ca_store.load_ca()
    request_der = ocsp_request(cert_of(record), ca.issuing_cert)
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    answer = get_ocsp(rp, request_der)
    response = ocsp_response(answer)
    assert response.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
    assert response.certificate_status == ocsp.OCSPCertStatus.GOOD
    assert response.serial_number == int(record.serial, 16)
    ca.ocsp_cert.public_key().verify(response.signature, response.tbs_response_bytes,
                                     padding_for(ca.ocsp_cert), response.signature_hash_algorithm)

    _, headers, body = answer
    for name in ("Cache-Control", "Last-Modified", "Expires", "ETag"):
        assert headers.get(name), f"{name} missing: {dict(headers)}"
    cache_control = headers["Cache-Control"]
    max_age = int(re.search(r"max-age=(\d+)", cache_control).group(1))
    next_update = response.next_update_utc
    this_update = response.this_update_utc
    assert 0 < max_age <= (next_update - before).total_seconds() + 1
    assert "no-store" not in cache_control and "private" not in cache_control
    assert parsedate_to_datetime(headers["Last-Modified"]) == this_update
    assert parsedate_to_datetime(headers["Expires"]) == next_update

    # The same question again (no nonce): the same cached answer, the same validators.
    again = get_ocsp(rp, request_der)
    assert again[2] == body
    assert again[1]["ETag"] == headers["ETag"]

    # With the path left un-encoded (base64 "/" and "+" as is), as many clients send it.
    raw = fetch(f"{rp.url}/ocsp/{base64.b64encode(request_der).decode()}")
    assert ocsp_response(raw).certificate_status == ocsp.OCSPCertStatus.GOOD

    # A status change is never hidden behind the cache.
    status.revoke_certificate(record, "key-compromise", actor="test")
    revoked = get_ocsp(rp, request_der)
    assert ocsp_response(revoked).certificate_status == ocsp.OCSPCertStatus.REVOKED
    assert revoked[1]["ETag"] != headers["ETag"]


@needs_openssl
def test_openssl_reads_the_get_form_response(rp, record):
    ca = ca_store.load_ca()
    _, _, body = get_ocsp(rp, ocsp_request(cert_of(record), ca.issuing_cert))
    (rp.folder / "resp.der").write_bytes(body)
    done = openssl(rp, "ocsp", "-respin", "resp.der", "-issuer", "issuing.pem", "-cert", "ee.pem",
                   "-CAfile", "root.pem", "-no_nonce")
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "Response verify OK" in output, output
    assert re.search(r"^ee\.pem: good$", done.stdout, re.M), output


def padding_for(cert):
    return padding.PKCS1v15() if isinstance(cert.public_key(), rsa.RSAPublicKey) else \
        ec.ECDSA(hashes.SHA256())


# -- 2. openssl verify -crl_check -----------------------------------------------------------

def download_crl(rp, headers=None):
    code, response_headers, body = fetch(rp.url + "/pki/issuing.crl", headers=headers)
    return code, response_headers, body


def openssl_verify_with_crl(rp, crl_der: bytes) -> subprocess.CompletedProcess:
    (rp.folder / "crl.der").write_bytes(crl_der)
    converted = openssl(rp, "crl", "-inform", "DER", "-in", "crl.der", "-out", "crl.pem")
    assert converted.returncode == 0, converted.stderr
    return openssl(rp, "verify", "-crl_check", "-CAfile", "root.pem", "-untrusted",
                   "issuing.pem", "-CRLfile", "crl.pem", "ee.pem")


@needs_openssl
def test_openssl_verify_with_the_served_crl(rp, record):
    code, headers, first = download_crl(rp)
    assert code == 200
    assert headers.get_content_type() == "application/pkix-crl"
    etag, last_modified = headers.get("ETag"), headers.get("Last-Modified")
    assert etag and last_modified and headers.get("Expires") and headers.get("Cache-Control")
    crl = x509.load_der_x509_crl(first)
    assert parsedate_to_datetime(last_modified) == crl.last_update_utc
    assert parsedate_to_datetime(headers["Expires"]) == crl.next_update_utc

    done = openssl_verify_with_crl(rp, first)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ee.pem: OK" in done.stdout

    # Conditional GETs while nothing changed.
    code, _, body = download_crl(rp, {"If-None-Match": etag})
    assert (code, body) == (304, b"")
    code, _, body = download_crl(rp, {"If-Modified-Since": last_modified})
    assert (code, body) == (304, b"")

    clock.advance(dt.timedelta(seconds=1))      # a CRL one second newer: Last-Modified moves
    status.revoke_certificate(record, "key-compromise", actor="test")
    code, headers, second = download_crl(rp, {"If-None-Match": etag})
    assert code == 200, "a stale ETag must get the new CRL"
    assert headers["ETag"] != etag
    assert parsedate_to_datetime(headers["Last-Modified"]) > parsedate_to_datetime(last_modified)
    assert x509.load_der_x509_crl(second).get_revoked_certificate_by_serial_number(
        int(record.serial, 16)) is not None

    done = openssl_verify_with_crl(rp, second)
    assert done.returncode != 0
    assert "certificate revoked" in done.stdout + done.stderr, done.stdout + done.stderr


def test_a_crl_published_in_the_same_second_is_not_hidden_by_if_modified_since(rp, record):
    # Start the first CRL at the top of a second, then revoke in that same second.
    now = clock.now()
    clock.advance(dt.timedelta(microseconds=1_000_000 - now.microsecond))
    code, headers, _ = download_crl(rp)
    assert code == 200
    first_update = status.latest_crl().this_update
    clock.advance(first_update - clock.now())       # back to the first CRL's instant (+ ms)
    status.revoke_certificate(record, "key-compromise", actor="test")

    # This download signs the full CRL again, in the same second as the first.
    code, _, body = download_crl(rp, {"If-Modified-Since": headers["Last-Modified"]})
    assert code == 200, "a CRL newer than the client's copy must not be answered 304"
    assert x509.load_der_x509_crl(body).get_revoked_certificate_by_serial_number(
        int(record.serial, 16)) is not None


# -- 3. pyhanko-certvalidator, hard fail, following the certificate's own URLs ----------------

# pyhanko-certvalidator reads every subjectAltName entry's native value for name-constraint
# processing, and asn1crypto cannot decode an otherName of a type it does not know once the
# value holds a context-specific tag, as npkiIdentifyData's VID does (virtualID [0] EXPLICIT).
# Genuine yessign certificates are the same (see the test below), so a relying party using
# pyhanko has to tell asn1crypto the type, as this fixture does.

class _AsnVid(asn1_core.Sequence):
    _fields = [("hash_alg", asn1_algos.DigestAlgorithm),
               ("virtual_id", asn1_core.OctetString, {"explicit": 0})]


class _AsnUserInfo(asn1_core.Sequence):
    _fields = [("id_type", asn1_core.ObjectIdentifier), ("id_value", _AsnVid)]


class _AsnUserInfos(asn1_core.SequenceOf):
    _child_spec = _AsnUserInfo


class _AsnIdentifyData(asn1_core.Sequence):
    _fields = [("real_name", asn1_core.UTF8String), ("user_infos", _AsnUserInfos)]


@pytest.fixture
def npki_aware_asn1crypto(monkeypatch):
    """asn1crypto told that otherName 1.2.410.200004.10.1.1 is npkiIdentifyData; undone after."""
    other_name = asn1_x509.AnotherName
    other_name()                # asn1crypto's own one-time set-up, so that undoing restores it
    for attribute in ("_field_map", "_field_ids", "_precomputed_specs", "_oid_nums"):
        monkeypatch.setattr(other_name, attribute, getattr(other_name, attribute))
    monkeypatch.setattr(other_name, "_oid_pair", ("type_id", "value"))
    monkeypatch.setattr(other_name, "_oid_specs", {"1.2.410.200004.10.1.1": _AsnIdentifyData})
    other_name()._setup()       # recompute the parsing tables with the OID mapping


def san_natives(der: bytes) -> list:
    return [name.native for name in asn1_x509.Certificate.load(der).subject_alt_name_value]


def test_our_identify_data_decodes_like_a_genuine_yessign_certificate(rp, record,
                                                                      npki_aware_asn1crypto):
    yessign = san_natives((VECTORS / "pypinksign" / "signCert.der").read_bytes())
    ours = san_natives(bytes(record.der))
    for names in (yessign, ours):
        assert len(names) == 1
        value = names[0]["value"]
        assert names[0]["type_id"] == "1.2.410.200004.10.1.1"
        assert value["user_infos"][0]["id_type"] == "1.2.410.200004.10.1.1.1"
        assert value["user_infos"][0]["id_value"]["hash_alg"]["algorithm"] == "sha256"
        assert len(value["user_infos"][0]["id_value"]["virtual_id"]) == 32
    assert ours[0]["value"]["real_name"] == Customer.get(Customer.code == "P0000001").name


CRL_ONLY = RevocationCheckingPolicy(RevocationCheckingRule.CRL_REQUIRED,
                                    RevocationCheckingRule.CHECK_IF_DECLARED)
OCSP_ONLY = RevocationCheckingPolicy(RevocationCheckingRule.OCSP_REQUIRED,
                                     RevocationCheckingRule.CHECK_IF_DECLARED)


def pyhanko_validate(record, policy, with_intermediate=True):
    """Validate the certificate for digitalSignature + nonRepudiation, fetching revocation
    information from the URLs in it; raises on failure."""
    ca = ca_store.load_ca()

    def asn1(cert):
        return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))

    async def run():
        async with AIOHttpFetcherBackend(per_request_timeout=15) as fetchers:
            context = ValidationContext(
                trust_roots=[asn1(ca.root_cert)], allow_fetching=True, fetchers=fetchers,
                revinfo_policy=CertRevTrustPolicy(policy))
            validator = CertificateValidator(
                asn1(cert_of(record)),
                intermediate_certs=[asn1(ca.issuing_cert)] if with_intermediate else [],
                validation_context=context)
            return await validator.async_validate_usage({"digital_signature", "non_repudiation"})

    # In a thread of its own: the session's Playwright browser keeps an event loop running
    # in the main thread, where asyncio.run() refuses to start another.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, run()).result()


# A certificate names its partition's CRL (/pki/crl/<n>.crl), which pyhanko accepts only if
# that CRL's issuingDistributionPoint matches the certificate's distribution point.
@pytest.mark.parametrize("policy, used", [(CRL_ONLY, "/pki/crl/"), (OCSP_ONLY, "/ocsp")],
                         ids=["crl", "ocsp"])
def test_pyhanko_hard_fail(rp, record, npki_aware_asn1crypto, policy, used):
    path = pyhanko_validate(record, policy)
    assert path.leaf.serial_number == int(record.serial, 16)
    assert rp.paths(used), rp.hits
    assert not rp.paths("/pki/issuing.crl"), rp.hits
    if policy is OCSP_ONLY:
        assert not rp.paths("/pki/crl/"), rp.hits
    # The issuing CA's own status, which its certificate declares, was checked as well: the
    # root's pre-signed OCSP answer or its CRL.
    assert rp.paths("/ocsp") or rp.paths("/pki/root.crl"), rp.hits

    status.revoke_certificate(record, "key-compromise", actor="test")
    with pytest.raises(RevokedError) as raised:
        pyhanko_validate(record, policy)
    assert "key_compromise" in str(raised.value) or "revoked" in str(raised.value).lower()


def test_pyhanko_hard_fail_on_suspension(rp, record, npki_aware_asn1crypto):
    status.suspend_certificate(record, actor="test")
    for policy in (CRL_ONLY, OCSP_ONLY):
        with pytest.raises(RevokedError):
            pyhanko_validate(record, policy)
    status.resume_certificate(record, actor="test")
    for policy in (CRL_ONLY, OCSP_ONLY):
        pyhanko_validate(record, policy)


def test_pyhanko_builds_the_path_from_the_aia_ca_issuers_url(rp, record, npki_aware_asn1crypto):
    pyhanko_validate(record, CRL_ONLY, with_intermediate=False)
    assert rp.paths("/pki/issuing.crt"), rp.hits


# -- 4. pkilint on what is served -------------------------------------------------------------

def test_served_crl_and_ocsp_responses_lint_clean(rp, record):
    ca = ca_store.load_ca()
    _, _, body = download_crl(rp)
    assert pki_lint.lint_crl(x509.load_der_x509_crl(body)) == []
    question = ocsp_request(cert_of(record), ca.issuing_cert)
    assert pki_lint.lint_ocsp_response(get_ocsp(rp, question)[2]) == []
    assert pki_lint.lint_ocsp_response(post_ocsp(rp, ocsp_request(
        cert_of(record), ca.issuing_cert, hashes.SHA256(), nonce=os.urandom(16)))[2]) == []

    status.revoke_certificate(record, "key-compromise", actor="test")   # reason + invalidity date
    _, _, body = download_crl(rp)
    crl = x509.load_der_x509_crl(body)
    assert len(crl) == 1
    assert pki_lint.lint_crl(crl) == []
    revoked = get_ocsp(rp, question)[2]
    answer = ocsp.load_der_ocsp_response(revoked)
    assert answer.certificate_status == ocsp.OCSPCertStatus.REVOKED
    entry = crl.get_revoked_certificate_by_serial_number(int(record.serial, 16))
    assert answer.revocation_time_utc == entry.revocation_date_utc     # CRL and OCSP agree
    assert answer.revocation_reason == entry.extensions.get_extension_for_class(
        x509.CRLReason).value.reason == x509.ReasonFlags.key_compromise
    assert pki_lint.lint_ocsp_response(revoked) == []
    # An "unknown" answer and an unsigned error answer lint clean too.
    other_ca, other_key, other_leaf = throwaway_ca(with_leaf=True)
    assert pki_lint.lint_ocsp_response(
        post_ocsp(rp, ocsp_request(other_leaf, other_ca))[2]) == []
    assert pki_lint.lint_ocsp_response(post_ocsp(rp, b"garbage")[2]) == []


# -- 5. bad input to the responder ------------------------------------------------------------

def throwaway_ca(with_leaf=False):
    """A self-signed CA named exactly like ours (so only the key hash differs), and a leaf."""
    ours = ca_store.load_ca().issuing_cert
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    ca = (x509.CertificateBuilder().subject_name(ours.subject).issuer_name(ours.subject)
          .public_key(key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .sign(key, hashes.SHA256()))
    if not with_leaf:
        return ca, key
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "elsewhere")]))
            .issuer_name(ca.subject).public_key(leaf_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .sign(key, hashes.SHA256()))
    return ca, key, leaf


def assert_malformed(answer):
    code, headers, body = answer
    assert code == 200, (code, body[:200])
    assert headers.get_content_type() == "application/ocsp-response"
    response = ocsp.load_der_ocsp_response(body)
    assert response.response_status == ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    assert "no-store" in headers.get("Cache-Control", "")


def two_question_request(record) -> bytes:
    ca = ca_store.load_ca()
    first = asn1_ocsp.OCSPRequest.load(ocsp_request(cert_of(record), ca.issuing_cert))
    entry = first["tbs_request"]["request_list"][0]
    other = asn1_ocsp.OCSPRequest.load(ocsp.OCSPRequestBuilder().add_certificate_by_hash(
        entry["req_cert"]["issuer_name_hash"].native, entry["req_cert"]["issuer_key_hash"].native,
        int(record.serial, 16) + 1, hashes.SHA1()).build().public_bytes(serialization.Encoding.DER))
    return asn1_ocsp.OCSPRequest({"tbs_request": {"request_list": [
        entry, other["tbs_request"]["request_list"][0]]}}).dump(force=True)


def test_garbage_and_truncated_requests_are_malformed(rp, record):
    ca = ca_store.load_ca()
    real = ocsp_request(cert_of(record), ca.issuing_cert)
    assert_malformed(post_ocsp(rp, b"\x00garbage, not DER\xff" * 3))
    assert_malformed(post_ocsp(rp, real[:-7]))
    assert_malformed(post_ocsp(rp, real[:len(real) // 2]))
    assert_malformed(post_ocsp(rp, real + b"\x00\x00"))                 # trailing bytes
    assert_malformed(post_ocsp(rp, b""))
    assert_malformed(get_ocsp(rp, real[:-7]))
    # RFC 9654: a nonce of other than 1 to 128 octets is malformedRequest; 128 is echoed.
    too_long = ocsp_request(cert_of(record), ca.issuing_cert, nonce=os.urandom(129))
    assert_malformed(post_ocsp(rp, too_long))
    echoed = ocsp_response(post_ocsp(rp, ocsp_request(cert_of(record), ca.issuing_cert,
                                                      nonce=b"\x01" * 128)))
    assert echoed.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == b"\x01" * 128


def test_wrong_content_type_is_415(rp, record):
    real = ocsp_request(cert_of(record), ca_store.load_ca().issuing_cert)
    for content_type in ("application/octet-stream", "application/x-www-form-urlencoded",
                         "text/plain"):
        code, _, _ = post_ocsp(rp, real, content_type)
        assert code == 415, content_type
    # Parameters on the right media type are fine.
    response = ocsp_response(post_ocsp(rp, real, "application/ocsp-request; charset=binary"))
    assert response.certificate_status == ocsp.OCSPCertStatus.GOOD


def test_oversized_request_is_413(rp):
    code, _, _ = post_ocsp(rp, b"\x30" + os.urandom(MAX_REQUEST_BYTES + 100))
    assert code == 413
    code, _, _ = post_ocsp(rp, b"\x30" * (300 * 1024))               # over MAX_CONTENT_LENGTH
    assert code == 413


def test_oversized_chunked_request_is_never_a_500(rp):
    """No Content-Length to check up front: the body is still bounded."""
    host, port = rp.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=15)
    try:
        connection.request("POST", "/ocsp", body=iter([b"\x30" * 4096] * 5),
                           headers={"Content-Type": "application/ocsp-request",
                                    "Transfer-Encoding": "chunked"}, encode_chunked=True)
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    assert response.status in (200, 413), response.status
    if response.status == 200:
        assert ocsp.load_der_ocsp_response(body).response_status == \
            ocsp.OCSPResponseStatus.MALFORMED_REQUEST


@pytest.mark.parametrize("algorithm", [hashes.SHA1(), hashes.SHA256()], ids=["sha1", "sha256"])
def test_another_issuers_certificate_is_unknown_never_good(rp, record, algorithm):
    other_ca, _, other_leaf = throwaway_ca(with_leaf=True)
    # Same issuer name as ours, different key: only the key hash tells them apart.
    assert other_ca.subject == ca_store.load_ca().issuing_cert.subject
    for question in (ocsp_request(other_leaf, other_ca, algorithm),
                     # and even with our certificate's own serial under the other issuer
                     ocsp.OCSPRequestBuilder().add_certificate_by_hash(
                         *_hashes_of(other_ca, algorithm), int(record.serial, 16), algorithm)
                     .build().public_bytes(serialization.Encoding.DER)):
        for answer in (post_ocsp(rp, question), get_ocsp(rp, question)):
            response = ocsp_response(answer)
            assert response.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
            assert response.certificate_status == ocsp.OCSPCertStatus.UNKNOWN


def _hashes_of(issuer, algorithm):
    request = ocsp.OCSPRequestBuilder().add_certificate(issuer, issuer, algorithm).build()
    return request.issuer_name_hash, request.issuer_key_hash


def test_unknown_serial_under_our_issuer_is_unknown(rp, record):
    ca = ca_store.load_ca()
    question = ocsp.OCSPRequestBuilder().add_certificate_by_hash(
        *_hashes_of(ca.issuing_cert, hashes.SHA1()), int(record.serial, 16) ^ 1,
        hashes.SHA1()).build().public_bytes(serialization.Encoding.DER)
    assert ocsp_response(post_ocsp(rp, question)).certificate_status == \
        ocsp.OCSPCertStatus.UNKNOWN


def test_bad_get_requests_are_malformed(rp):
    for path in ("not-base64!!", "%%%", "AAAA", "=", "MA%3D%3D", "ZZZZ/ZZZZ", "%FF%FE",
                 "MAA%3D"):
        assert_malformed(fetch(f"{rp.url}/ocsp/{path}"))


def test_requests_with_other_than_one_question_are_malformed(rp, record):
    assert_malformed(post_ocsp(rp, two_question_request(record)))
    assert_malformed(get_ocsp(rp, two_question_request(record)))
    empty = asn1_ocsp.OCSPRequest({"tbs_request": {"request_list": []}}).dump(force=True)
    assert_malformed(post_ocsp(rp, empty))


def test_unsupported_certid_hash_is_malformed_not_unknown(rp, record):
    question = ocsp_request(cert_of(record), ca_store.load_ca().issuing_cert, hashes.SHA512())
    assert_malformed(post_ocsp(rp, question))


def test_no_bad_input_was_ever_a_500(rp, record):
    """Everything above again in one go, checking only that the server never failed."""
    ca = ca_store.load_ca()
    real = ocsp_request(cert_of(record), ca.issuing_cert)
    answers = [post_ocsp(rp, body) for body in
               (b"", b"\x30", b"\x30\x80", b"\x30\x00", real[:-1], real[:5], os.urandom(64),
                two_question_request(record), b"\x30\x84\xff\xff\xff\xff")]
    answers += [fetch(f"{rp.url}/ocsp/{quoted}") for quoted in
                ("", "%00", "a" * 2000, urllib.parse.quote(base64.b64encode(os.urandom(40))))]
    answers += [fetch(rp.url + "/ocsp", method="GET"), fetch(rp.url + "/ocsp", method="PUT",
                                                             data=real)]
    for code, _, body in answers:
        assert code < 500, (code, body[:300])


# -- 6. the CA certificates -----------------------------------------------------------------

@pytest.mark.parametrize("path, which", [("/pki/root.crt", "root_cert"),
                                         ("/pki/issuing.crt", "issuing_cert")])
def test_ca_certificates_are_served_as_der(rp, path, which):
    code, headers, body = fetch(rp.url + path)
    assert code == 200
    assert headers.get_content_type() == "application/pkix-cert"
    expected = getattr(ca_store.load_ca(), which).public_bytes(serialization.Encoding.DER)
    assert body == expected
    assert x509.load_der_x509_certificate(body).fingerprint(hashes.SHA256()) == \
        hashlib.sha256(expected).digest()


def test_certificate_urls_point_at_the_live_server(rp, record):
    cert = cert_of(record)
    dp = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert [name.value for point in dp for name in point.full_name] == \
        [rp.url + f"/pki/crl/{record.crl_partition}.crl"]
    aia = {(d.access_method, d.access_location.value) for d in
           cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value}
    assert aia == {(x509.AuthorityInformationAccessOID.OCSP, rp.url + "/ocsp"),
                   (x509.AuthorityInformationAccessOID.CA_ISSUERS, rp.url + "/pki/issuing.crt")}
