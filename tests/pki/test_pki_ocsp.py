"""OCSP: parsing requests, issuer hashes, signed good/revoked/unknown answers, OpenSSL, pkilint, malformed input."""

import datetime as dt
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.x509 import ocsp as cocsp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyasn1.codec.der import decoder, encoder
from pyasn1.type import univ
from pyasn1_alt_modules import rfc6960

from pki import ca, crl, files, lint, ocsp, profile, serials
from pki.errors import PkiError

NOW = dt.datetime(2025, 3, 2, 5, 0, tzinfo=dt.UTC)  # as in conftest.py
THIS_UPDATE = NOW.replace(microsecond=0)
NEXT_UPDATE = THIS_UPDATE + dt.timedelta(days=1)
REVOKED_AT = NOW - dt.timedelta(hours=3)
HASHES = [hashes.SHA1(), hashes.SHA256()]
NONCE = bytes(range(32))


def _request(cert, issuer, algorithm=hashes.SHA1(), nonce: bytes | None = NONCE, extra=()) -> bytes:
    builder = cocsp.OCSPRequestBuilder().add_certificate(cert, issuer, algorithm)
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    for ext in extra:
        builder = builder.add_extension(ext, critical=False)
    return builder.build().public_bytes(serialization.Encoding.DER)


def _edit(der: bytes, change) -> bytes:
    """The request `der` decoded with pyasn1, changed in place by `change`, and re-encoded."""
    req, rest = decoder.decode(der, asn1Spec=rfc6960.OCSPRequest())
    assert not rest
    change(req)
    return encoder.encode(req)


@pytest.fixture(scope="module")
def ee(ca_keys, ee_key):
    # Issued directly rather than through make_request (function-scoped) so module fixtures can share it.
    req = profile.EndEntityRequest(
        cert_type=profile.CERT_TYPES["personal-banking"], holder_name="홍길동",
        unique_digits="0012345678901234", bank_code="CCBANK", ca_org="CertCenter",
        public_key=ee_key.public_key(), not_before=NOW, not_after=profile.validity_end(NOW),
        serial=serials.random_serial(), policy_arc=profile.DEFAULT_POLICY_ARC,
        urls=profile.urls_for("https://cc.example.kr/"), identify_data=None)
    return ca.sign_certificate(profile.end_entity_builder(req, ca_keys.issuing_cert), ca_keys.issuing_key)


@pytest.fixture(scope="module")
def real_request(ca_keys, ee) -> bytes:
    return _request(ee, ca_keys.issuing_cert)


def _answer(keys, question, status) -> cocsp.OCSPResponse:
    der = ocsp.build_response(question, status, keys.ocsp_cert, keys.ocsp_key, THIS_UPDATE, NEXT_UPDATE)
    return cocsp.load_der_ocsp_response(der)


# Parsing


@pytest.mark.parametrize("algorithm", HASHES, ids=lambda h: h.name)
@pytest.mark.parametrize("nonce", [NONCE, b"\x01" * 16, b"x", None], ids=["nonce32", "nonce16", "nonce1", "no-nonce"])
def test_parse_request(ca_keys, ee, algorithm, nonce):
    q = ocsp.parse_request(_request(ee, ca_keys.issuing_cert, algorithm, nonce))
    assert q.serial == ee.serial_number
    assert isinstance(q.hash_algorithm, type(algorithm))
    assert (q.issuer_name_hash, q.issuer_key_hash) == ocsp.issuer_hashes(ca_keys.issuing_cert, algorithm)
    assert q.nonce == nonce
    assert ocsp.is_our_issuer(q, ca_keys.issuing_cert)


def test_parse_request_takes_bytearray_and_memoryview(real_request):
    expected = ocsp.parse_request(real_request)
    assert ocsp.parse_request(bytearray(real_request)) == expected
    assert ocsp.parse_request(memoryview(real_request)) == expected


def test_issuer_hashes_follow_rfc_6960(ca_keys):
    # Independent computation: SHA-1 over the DER Name, and over the BIT STRING's contents, which
    # for RSA is the DER RSAPublicKey (PKCS#1).
    issuing = ca_keys.issuing_cert
    pkcs1 = issuing.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    for algorithm in HASHES:
        def h(data, algorithm=algorithm):
            d = hashes.Hash(algorithm)
            d.update(data)
            return d.finalize()
        assert ocsp.issuer_hashes(issuing, algorithm) == (h(issuing.subject.public_bytes()), h(pkcs1))


def test_issuer_hashes_refuse_other_algorithms(ca_keys):
    for bad in (hashes.SHA512(), hashes.MD5(), None):
        with pytest.raises(PkiError) as err:
            ocsp.issuer_hashes(ca_keys.issuing_cert, bad)
        assert err.value.code == "ocsp_invalid"
    with pytest.raises(PkiError):
        ocsp.issuer_hashes(b"not a cert", hashes.SHA1())


@pytest.mark.parametrize("algorithm", HASHES, ids=lambda h: h.name)
def test_other_issuers_are_not_ours(ca_keys, ee, algorithm):
    # The issuing CA asked about under the root: a real CertID, but not for our issuing CA.
    about_issuing = ocsp.parse_request(_request(ca_keys.issuing_cert, ca_keys.root_cert, algorithm))
    assert not ocsp.is_our_issuer(about_issuing, ca_keys.issuing_cert)
    assert ocsp.is_our_issuer(about_issuing, ca_keys.root_cert)
    # Same name, different key (a re-keyed or impostor CA): the key hash must also match.
    twin, _ = ca.create_issuing("CertCenter", ca_keys.root_cert, ca_keys.root_key, profile.DEFAULT_POLICY_ARC, NOW)
    assert twin.subject == ca_keys.issuing_cert.subject
    q = ocsp.parse_request(_request(ee, twin, algorithm))
    assert q.issuer_name_hash == ocsp.issuer_hashes(ca_keys.issuing_cert, algorithm)[0]
    assert not ocsp.is_our_issuer(q, ca_keys.issuing_cert)


# Responses


def _check_common(keys, resp: cocsp.OCSPResponse, q: ocsp.OcspQuestion):
    assert resp.response_status is cocsp.OCSPResponseStatus.SUCCESSFUL
    assert resp.serial_number == q.serial
    assert isinstance(resp.hash_algorithm, type(q.hash_algorithm))
    assert resp.issuer_name_hash == q.issuer_name_hash and resp.issuer_key_hash == q.issuer_key_hash
    assert resp.this_update_utc == THIS_UPDATE and resp.next_update_utc == NEXT_UPDATE
    # The responder is the delegated OCSP signer, named by the SHA-1 of its key, its cert included.
    assert resp.responder_name is None
    assert resp.responder_key_hash == ocsp.issuer_hashes(keys.ocsp_cert, hashes.SHA1())[1]
    assert resp.certificates == [keys.ocsp_cert]
    assert isinstance(resp.signature_hash_algorithm, hashes.SHA256)
    keys.ocsp_cert.public_key().verify(resp.signature, resp.tbs_response_bytes,
                                       padding.PKCS1v15(), hashes.SHA256())
    if q.nonce is None:
        assert len(resp.extensions) == 0
    else:
        nonce = resp.extensions.get_extension_for_class(x509.OCSPNonce)
        assert not nonce.critical and nonce.value.nonce == q.nonce


@pytest.mark.parametrize("algorithm", HASHES, ids=lambda h: h.name)
@pytest.mark.parametrize("nonce", [NONCE, None], ids=["nonce", "no-nonce"])
def test_good(ca_keys, ee, algorithm, nonce):
    q = ocsp.parse_request(_request(ee, ca_keys.issuing_cert, algorithm, nonce))
    resp = _answer(ca_keys, q, ocsp.CertStatus("good"))
    _check_common(ca_keys, resp, q)
    assert resp.certificate_status is cocsp.OCSPCertStatus.GOOD
    assert resp.revocation_time_utc is None and resp.revocation_reason is None


@pytest.mark.parametrize("reason", sorted(crl.REASONS))
def test_revoked(ca_keys, ee, reason):
    q = ocsp.parse_request(_request(ee, ca_keys.issuing_cert, hashes.SHA256()))
    resp = _answer(ca_keys, q, ocsp.CertStatus("revoked", REVOKED_AT, reason))
    _check_common(ca_keys, resp, q)
    assert resp.certificate_status is cocsp.OCSPCertStatus.REVOKED
    assert resp.revocation_time_utc == REVOKED_AT
    # "unspecified" is left out, as in the CRL; a hold is revoked/certificateHold (RFC 6960 2.2).
    assert resp.revocation_reason is (None if reason == "unspecified" else crl.REASONS[reason])


def test_unknown(ca_keys, ee):
    q = ocsp.parse_request(_request(ee, ca_keys.issuing_cert))
    resp = _answer(ca_keys, q, ocsp.CertStatus("unknown"))
    _check_common(ca_keys, resp, q)
    assert resp.certificate_status is cocsp.OCSPCertStatus.UNKNOWN


def test_malformed_response():
    resp = cocsp.load_der_ocsp_response(ocsp.malformed_response())
    assert resp.response_status is cocsp.OCSPResponseStatus.MALFORMED_REQUEST
    assert ocsp.malformed_response() == bytes.fromhex("30030a0101")


@pytest.mark.parametrize("status", [
    ocsp.CertStatus("good"), ocsp.CertStatus("unknown"),
    ocsp.CertStatus("revoked", REVOKED_AT, "key-compromise"),
    ocsp.CertStatus("revoked", REVOKED_AT, "certificate-hold"),
    ocsp.CertStatus("revoked", REVOKED_AT, "unspecified"),
], ids=["good", "unknown", "revoked", "hold", "revoked-unspecified"])
@pytest.mark.parametrize("algorithm", HASHES, ids=lambda h: h.name)
def test_responses_lint_clean(ca_keys, ee, status, algorithm):
    q = ocsp.parse_request(_request(ee, ca_keys.issuing_cert, algorithm))
    der = ocsp.build_response(q, status, ca_keys.ocsp_cert, ca_keys.ocsp_key, THIS_UPDATE, NEXT_UPDATE)
    assert lint.lint_ocsp_response(der) == []


def test_malformed_response_lints_clean():
    assert lint.lint_ocsp_response(ocsp.malformed_response()) == []


def test_lint_ocsp_response_refuses_garbage():
    for bad in (b"", b"\x01\x02", b"\x30\x03\x02", "text"):
        with pytest.raises(PkiError) as err:
            lint.lint_ocsp_response(bad)
        assert err.value.code == "lint_unreadable"


@pytest.mark.parametrize("status, this_update, next_update", [
    (ocsp.CertStatus("bogus"), THIS_UPDATE, NEXT_UPDATE),
    (ocsp.CertStatus(None), THIS_UPDATE, NEXT_UPDATE),
    (ocsp.CertStatus("revoked"), THIS_UPDATE, NEXT_UPDATE),
    (ocsp.CertStatus("revoked", REVOKED_AT), THIS_UPDATE, NEXT_UPDATE),
    (ocsp.CertStatus("revoked", REVOKED_AT, "lost"), THIS_UPDATE, NEXT_UPDATE),
    (ocsp.CertStatus("revoked", REVOKED_AT.replace(tzinfo=None), "superseded"), THIS_UPDATE, NEXT_UPDATE),
    (ocsp.CertStatus("good", REVOKED_AT), THIS_UPDATE, NEXT_UPDATE),
    (ocsp.CertStatus("unknown", None, "superseded"), THIS_UPDATE, NEXT_UPDATE),
    (ocsp.CertStatus("good"), THIS_UPDATE.replace(tzinfo=None), NEXT_UPDATE),
    (ocsp.CertStatus("good"), THIS_UPDATE, THIS_UPDATE),
    (ocsp.CertStatus("good"), NEXT_UPDATE, THIS_UPDATE),
    (ocsp.CertStatus("good"), THIS_UPDATE, None),
])
def test_build_response_refuses_bad_input(ca_keys, real_request, status, this_update, next_update):
    q = ocsp.parse_request(real_request)
    with pytest.raises(PkiError) as err:
        ocsp.build_response(q, status, ca_keys.ocsp_cert, ca_keys.ocsp_key, this_update, next_update)
    assert err.value.code == "ocsp_invalid"


def test_build_response_refuses_a_foreign_key(ca_keys, real_request):
    q = ocsp.parse_request(real_request)
    for cert, key in ((ca_keys.ocsp_cert, ca_keys.issuing_key), (ca_keys.ocsp_cert, None),
                      (b"cert", ca_keys.ocsp_key)):
        with pytest.raises(PkiError) as err:
            ocsp.build_response(q, ocsp.CertStatus("good"), cert, key, THIS_UPDATE, NEXT_UPDATE)
        assert err.value.code == "ocsp_invalid"
    with pytest.raises(PkiError):
        ocsp.build_response("question", ocsp.CertStatus("good"), ca_keys.ocsp_cert, ca_keys.ocsp_key,
                            THIS_UPDATE, NEXT_UPDATE)


# OpenSSL as the relying party


def _openssl(tmp_path, *args):
    return subprocess.run(["openssl", "ocsp", *args], cwd=tmp_path, capture_output=True, text=True)


@pytest.fixture
def live(live_ca, issue_ee, tmp_path):
    """A live hierarchy and EE written out as PEM files in tmp_path; returns (keys, ee, now)."""
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    cert = issue_ee(live_ca, now)
    for name, c in (("root", live_ca.root_cert), ("issuing", live_ca.issuing_cert),
                    ("ocsp", live_ca.ocsp_cert), ("ee", cert)):
        (tmp_path / f"{name}.pem").write_bytes(files.cert_pem(c))
    return live_ca, cert, now.replace(microsecond=0)


@pytest.mark.parametrize("status, shown", [
    (ocsp.CertStatus("good"), ["ee.pem: good"]),
    (ocsp.CertStatus("unknown"), ["ee.pem: unknown"]),
    (ocsp.CertStatus("revoked", REVOKED_AT, "key-compromise"), ["ee.pem: revoked", "Reason: keyCompromise"]),
    (ocsp.CertStatus("revoked", REVOKED_AT, "certificate-hold"), ["ee.pem: revoked", "Reason: certificateHold"]),
], ids=["good", "unknown", "revoked", "hold"])
@pytest.mark.parametrize("algorithm", HASHES, ids=lambda h: h.name)
def test_openssl_accepts_the_delegated_response(live, tmp_path, status, shown, algorithm):
    keys, ee_cert, now = live
    q = ocsp.parse_request(_request(ee_cert, keys.issuing_cert, algorithm))
    (tmp_path / "resp.der").write_bytes(ocsp.build_response(
        q, status, keys.ocsp_cert, keys.ocsp_key, now, now + dt.timedelta(days=1)))
    # The delegation path a relying party takes: the signer certificate comes from the response
    # and must chain to the root through the issuing CA that issued the certificate asked about.
    # -no_nonce: with -cert OpenSSL makes up a request of its own, whose nonce ours cannot echo.
    run = _openssl(tmp_path, "-respin", "resp.der", "-issuer", "issuing.pem", f"-{algorithm.name}",
                   "-cert", "ee.pem", "-no_nonce", "-CAfile", "root.pem", "-verify_other", "issuing.pem", "-resp_text")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Response verify OK" in run.stderr
    assert "Responder Id: " in run.stdout and "OCSP Response Status: successful (0x0)" in run.stdout
    for text in shown:
        assert text in run.stdout, run.stdout


def test_openssl_with_vafile(live, tmp_path):
    keys, ee_cert, now = live
    q = ocsp.parse_request(_request(ee_cert, keys.issuing_cert))
    (tmp_path / "resp.der").write_bytes(ocsp.build_response(
        q, ocsp.CertStatus("good"), keys.ocsp_cert, keys.ocsp_key, now, now + dt.timedelta(days=1)))
    run = _openssl(tmp_path, "-respin", "resp.der", "-issuer", "issuing.pem", "-cert", "ee.pem", "-no_nonce",
                   "-VAfile", "ocsp.pem", "-CAfile", "root.pem", "-resp_text")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Response verify OK" in run.stderr and "ee.pem: good" in run.stdout


@pytest.mark.parametrize("digest", ["sha1", "sha256"])
def test_openssl_request_round_trip_with_nonce(live, tmp_path, digest):
    keys, ee_cert, now = live
    run = _openssl(tmp_path, "-issuer", "issuing.pem", f"-{digest}", "-cert", "ee.pem", "-reqout", "req.der")
    assert run.returncode == 0, run.stderr
    q = ocsp.parse_request((tmp_path / "req.der").read_bytes())
    assert q.serial == ee_cert.serial_number and q.nonce is not None
    assert ocsp.is_our_issuer(q, keys.issuing_cert)
    (tmp_path / "resp.der").write_bytes(ocsp.build_response(
        q, ocsp.CertStatus("good"), keys.ocsp_cert, keys.ocsp_key, now, now + dt.timedelta(days=1)))
    # With -reqin OpenSSL checks that the response echoes the request's nonce. (Not with -cert:
    # that would add a second question to the loaded request.)
    run = _openssl(tmp_path, "-reqin", "req.der", "-respin", "resp.der", "-CAfile", "root.pem",
                   "-verify_other", "issuing.pem", "-resp_text")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Response verify OK" in run.stderr
    assert "Cert Status: good" in run.stdout and "OCSP Nonce" in run.stdout
    assert "nonce verify error" not in (run.stdout + run.stderr).lower()


def test_openssl_notices_a_wrong_nonce(live, tmp_path):
    keys, ee_cert, now = live
    _openssl(tmp_path, "-issuer", "issuing.pem", "-cert", "ee.pem", "-reqout", "req.der")
    q = ocsp.parse_request((tmp_path / "req.der").read_bytes())
    other = ocsp.OcspQuestion(q.issuer_name_hash, q.issuer_key_hash, q.serial, q.hash_algorithm, b"\x00" * 16)
    (tmp_path / "resp.der").write_bytes(ocsp.build_response(
        other, ocsp.CertStatus("good"), keys.ocsp_cert, keys.ocsp_key, now, now + dt.timedelta(days=1)))
    run = _openssl(tmp_path, "-reqin", "req.der", "-respin", "resp.der", "-CAfile", "root.pem",
                   "-verify_other", "issuing.pem")
    assert run.returncode != 0
    assert "nonce verify error" in (run.stdout + run.stderr).lower()


# Malformed requests


def _assert_malformed(data):
    with pytest.raises(PkiError) as err:
        ocsp.parse_request(data)
    assert err.value.code == "ocsp_malformed"


def test_max_request_bytes():
    assert ocsp.MAX_REQUEST_BYTES == 10 * 1024


@pytest.mark.parametrize("data", [
    b"", b"\x00", b"\x30", b"\x30\x00", b"\x30\x80\x00\x00", b"GET / HTTP/1.1\r\n\r\n",
    bytes(64), b"\xff" * 300, None, "30", 12345,
], ids=repr)
def test_garbage(data):
    _assert_malformed(data)


def test_truncated_at_every_length(real_request):
    for cut in range(len(real_request)):
        _assert_malformed(real_request[:cut])


def test_trailing_data(real_request):
    _assert_malformed(real_request + b"\x00")
    _assert_malformed(real_request + real_request)


def test_oversized(ca_keys, ee, real_request):
    _assert_malformed(real_request + b"\x00" * ocsp.MAX_REQUEST_BYTES)
    # A well-formed request that is merely too big: cryptography alone would take it.
    big = _request(ee, ca_keys.issuing_cert, extra=[
        x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.99999.1"), b"\x04\x82\x2b\x00" + bytes(11008))])
    assert len(big) > ocsp.MAX_REQUEST_BYTES
    assert cocsp.load_der_ocsp_request(big).serial_number == ee.serial_number
    _assert_malformed(big)


def test_two_certificates(real_request, ca_keys, ee):
    def add_second(req):
        second, _ = decoder.decode(_request(ca_keys.issuing_cert, ca_keys.root_cert), asn1Spec=rfc6960.OCSPRequest())
        req["tbsRequest"]["requestList"].append(second["tbsRequest"]["requestList"][0])
    two = _edit(real_request, add_second)
    assert len(decoder.decode(two, asn1Spec=rfc6960.OCSPRequest())[0]["tbsRequest"]["requestList"]) == 2
    _assert_malformed(two)
    _assert_malformed(_edit(real_request, lambda req: req["tbsRequest"]["requestList"].append(
        req["tbsRequest"]["requestList"][0])))


def test_no_certificate(real_request):
    _assert_malformed(_edit(real_request, lambda req: req["tbsRequest"]["requestList"].clear()))


@pytest.mark.parametrize("algorithm", [hashes.SHA224(), hashes.SHA384(), hashes.SHA512()], ids=lambda h: h.name)
def test_other_hash_algorithms(ca_keys, ee, algorithm):
    data = _request(ee, ca_keys.issuing_cert, algorithm)
    assert isinstance(cocsp.load_der_ocsp_request(data).hash_algorithm, type(algorithm))
    _assert_malformed(data)


def test_unknown_hash_oid(real_request):
    def change(req):
        req["tbsRequest"]["requestList"][0]["reqCert"]["hashAlgorithm"]["algorithm"] = univ.ObjectIdentifier("1.2.3.4")
    _assert_malformed(_edit(real_request, change))


def test_hash_length_must_match(real_request):
    def change(req):
        req["tbsRequest"]["requestList"][0]["reqCert"]["issuerNameHash"] = univ.OctetString(b"\x00" * 32)
    _assert_malformed(_edit(real_request, change))


@pytest.mark.parametrize("serial", [0, -5, 1 << 159, 1 << 200])
def test_impossible_serials(real_request, serial):
    def change(req):
        req["tbsRequest"]["requestList"][0]["reqCert"]["serialNumber"] = serial
    _assert_malformed(_edit(real_request, change))


def test_largest_serial_is_accepted(real_request):
    def change(req):
        req["tbsRequest"]["requestList"][0]["reqCert"]["serialNumber"] = (1 << 159) - 1
    assert ocsp.parse_request(_edit(real_request, change)).serial == (1 << 159) - 1


@pytest.mark.parametrize("nonce", [b"", b"\x01" * 129])
def test_nonce_length(ca_keys, ee, nonce):
    # RFC 9654: a nonce of 0 or more than 128 octets is answered malformedRequest.
    _assert_malformed(_request(ee, ca_keys.issuing_cert, nonce=nonce))


def test_longest_nonce_is_echoed(ca_keys, ee):
    q = ocsp.parse_request(_request(ee, ca_keys.issuing_cert, nonce=b"\x07" * 128))
    resp = _answer(ca_keys, q, ocsp.CertStatus("good"))
    assert resp.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == b"\x07" * 128


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2 * 1024))
def test_random_bytes(data):
    _assert_malformed(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_mutated_requests_never_crash(real_request, data):
    # A flipped byte may still leave a valid request (e.g. inside a hash or the nonce); either way
    # the only outcomes are a question or PkiError("ocsp_malformed").
    buf = bytearray(real_request)
    for _ in range(data.draw(st.integers(1, 4))):
        buf[data.draw(st.integers(0, len(buf) - 1))] = data.draw(st.integers(0, 255))
    try:
        q = ocsp.parse_request(bytes(buf))
    except PkiError as exc:
        assert exc.code == "ocsp_malformed"
    else:
        assert isinstance(q, ocsp.OcspQuestion)
