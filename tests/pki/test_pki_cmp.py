"""pki.cmp on its own: what parse_request reads from the messages `openssl cmp` sends, the PBM and
signature checks, the replies' headers and bodies, and malformed, truncated, bit-flipped, random
and over-priced input, which only ever raises CmpError."""

import dataclasses
import datetime as dt
import hashlib

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyasn1.codec.der import decoder, encoder
from pyasn1.type import univ
from pyasn1_alt_modules import rfc4211, rfc9810

from pki import cmp
from pki.cmp import der, protection
from pki.cmp.protection import PbmParameters
from pki.errors import PkiError
from pki.signer import Pkcs11Token
from tests.conftest import SOFTHSM_MODULE
from tests.pki.cmp_server import (
    CODE,
    REF,
    CmpServer,
    cmp_signer,
    cmp_signer_pair,  # noqa: F401  (a fixture)
    openssl_cmp,
    pem,
    pem_key,
)

SECRET = CODE.encode()
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def corpus(live_ca, cmp_signer_pair, tmp_path_factory):
    """Every request `openssl cmp` sent in one session (ir, certConf, cr, p10cr, kur, rr, genm)
    and our answers: {body type: [(request DER, answer DER), …]}, plus the key and certificate
    enrolled by the ir."""
    folder = tmp_path_factory.mktemp("cmp-corpus")
    (folder / "root.pem").write_bytes(pem(live_ca.root_cert))
    (folder / "issuing.pem").write_bytes(pem(live_ca.issuing_cert))
    key = rsa.generate_private_key(65537, 2048)
    (folder / "cur.key").write_bytes(pem_key(key))
    (folder / "new.key").write_bytes(pem_key(ec.generate_private_key(ec.SECP256R1())))
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "p10")]))
           .sign(key, hashes.SHA256()))
    (folder / "csr.pem").write_bytes(csr.public_bytes(serialization.Encoding.PEM))
    server = CmpServer(live_ca, *cmp_signer_pair, implicit_confirm=False)
    pbm = ("-ref", REF, "-secret", f"pass:{CODE}")
    signed = ("-cert", "cur.pem", "-key", "cur.key", "-trusted", "root.pem", "-untrusted", "issuing.pem")
    try:
        openssl_cmp(server, folder, "-cmd", "ir", *pbm, "-newkey", "cur.key", "-subject", "/CN=Corpus",
                    "-certout", "cur.pem", "-implicit_confirm")
        openssl_cmp(server, folder, "-cmd", "cr", *pbm, "-newkey", "new.key", "-subject", "/CN=cr",
                    "-certout", "cr.pem")
        openssl_cmp(server, folder, "-cmd", "p10cr", *pbm, "-csr", "csr.pem", "-certout", "p10.pem")
        openssl_cmp(server, folder, "-cmd", "kur", *signed, "-newkey", "new.key", "-certout", "kur.pem")
        openssl_cmp(server, folder, "-cmd", "genm", *pbm, "-infotype", "caCerts")
        openssl_cmp(server, folder, "-cmd", "rr", *signed, "-oldcert", "cur.pem", "-revreason", "1")
    finally:
        server.close()
    found = {}
    for request, answer in server.exchanges:
        found.setdefault(cmp.parse_request(request).body_type, []).append((request, answer))
    enrolled = x509.load_pem_x509_certificate((folder / "cur.pem").read_bytes())
    return {"messages": found, "key": key, "cert": enrolled, "server": server}


def _request(corpus, kind: str, index: int = 0) -> bytes:
    return corpus["messages"][kind][index][0]


def _refused(data, fail_info: str, code: str | None = None) -> cmp.CmpError:
    with pytest.raises(cmp.CmpError) as caught:
        cmp.parse_request(data)
    assert caught.value.fail_info == {fail_info}, caught.value
    assert code is None or caught.value.code == code
    return caught.value


def _edit(der: bytes, change) -> bytes:
    """`der` decoded as a PKIMessage, changed in place by `change`, re-encoded (protection stale)."""
    message, rest = decoder.decode(der, asn1Spec=rfc9810.PKIMessage())
    assert not rest
    change(message)
    return encoder.encode(message)


# What openssl cmp sends, read.

def test_the_session_went_through(corpus):
    assert sorted(corpus["messages"]) == ["certConf", "cr", "genm", "ir", "kur", "p10cr", "rr"]
    assert corpus["server"].refusals == []


def test_ir(corpus):
    request = cmp.parse_request(_request(corpus, "ir"))
    assert request.body_type == "ir"
    header = request.header
    assert header.pvno == 2 and header.sender_kid == REF.encode() and header.implicit_confirm
    assert header.sender == x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "Corpus")])
    assert len(header.transaction_id) == 16 and len(header.sender_nonce) == 16 and header.recip_nonce is None
    assert abs(header.message_time - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=10)
    # OpenSSL 3.0's defaults: 16 octets of salt, SHA-256, 500 iterations, HMAC-SHA1.
    assert isinstance(request.protection, PbmParameters)
    assert (len(request.protection.salt), request.protection.owf.name, request.protection.iterations,
            request.protection.mac.name) == (16, "sha256", 500, "sha1")
    wanted = request.certificate_request
    assert wanted.cert_req_id == 0 and wanted.public_key == corpus["key"].public_key()
    assert wanted.subject == header.sender and wanted.old_cert_serial is None
    cmp.verify_pbm(request, SECRET)


def test_cr_and_p10cr(corpus):
    cr = cmp.parse_request(_request(corpus, "cr"))
    assert cr.body_type == "cr" and isinstance(cr.certificate_request.public_key, ec.EllipticCurvePublicKey)
    p10cr = cmp.parse_request(_request(corpus, "p10cr"))
    wanted = p10cr.certificate_request
    assert wanted.cert_req_id == -1 and wanted.csr is not None
    assert wanted.public_key == corpus["key"].public_key() and wanted.subject.rfc4514_string() == "CN=p10"
    for request in (cr, p10cr):
        cmp.verify_pbm(request, SECRET)


def test_kur_is_signed_by_the_current_certificate(corpus, live_ca):
    request = cmp.parse_request(_request(corpus, "kur"))
    assert isinstance(request.protection, cmp.SignatureAlgorithm)
    assert request.extra_certs[0] == corpus["cert"]
    assert request.certificate_request.old_cert_serial == corpus["cert"].serial_number
    assert request.certificate_request.old_cert_issuer == live_ca.issuing_cert.subject
    cmp.verify_signature(request, corpus["cert"])
    with pytest.raises(cmp.CmpError) as caught:
        cmp.verify_signature(request, live_ca.issuing_cert)
    assert caught.value.code == "cmp_bad_signature" and caught.value.fail_info == {"badMessageCheck"}
    with pytest.raises(cmp.CmpError) as caught:
        cmp.verify_pbm(request, SECRET)
    assert caught.value.fail_info == {"wrongIntegrity"}


def test_rr(corpus, live_ca):
    request = cmp.parse_request(_request(corpus, "rr"))
    assert request.revocation == cmp.RevocationRequest(
        serial=corpus["cert"].serial_number, issuer=live_ca.issuing_cert.subject,
        reason=x509.ReasonFlags.key_compromise)
    cmp.verify_signature(request, corpus["cert"])


def test_cert_conf_names_the_certificate(corpus):
    ir_answer = corpus["messages"]["ir"][0][1]
    # The ir asked for implicit confirmation and was not granted it, so certConf followed.
    request = cmp.parse_request(_request(corpus, "certConf"))
    [confirmation] = request.confirmations
    assert confirmation.status == cmp.StatusInfo("accepted") and confirmation.cert_req_id == 0
    assert cmp.confirms(confirmation, corpus["cert"])
    assert not cmp.confirms(confirmation, x509.load_pem_x509_certificate(pem(corpus["server"].keys.root_cert)))
    assert request.header.recip_nonce == _header(ir_answer)["senderNonce"]


def test_cert_conf_with_hash_alg_and_rejection(corpus):
    cert_der = corpus["cert"].public_bytes(serialization.Encoding.DER)

    def rejected_with_sha512(message):
        status = message["body"]["certConf"][0]
        status["certHash"] = hashlib.sha512(cert_der).digest()
        status["hashAlg"]["algorithm"] = univ.ObjectIdentifier("2.16.840.1.101.3.4.2.3")
        status["statusInfo"] = _status_info_value(2, 9, "key not mine")
    request = cmp.parse_request(_edit(_request(corpus, "certConf"), rejected_with_sha512))
    [confirmation] = request.confirmations
    assert confirmation.hash_algorithm.name == "sha512" and cmp.confirms(confirmation, corpus["cert"])
    assert confirmation.status == cmp.StatusInfo("rejection", frozenset({"badPOP"}), "key not mine")

    def md5(message):
        message["body"]["certConf"][0]["hashAlg"]["algorithm"] = univ.ObjectIdentifier("1.2.840.113549.2.5")
    _refused(_edit(_request(corpus, "certConf"), md5), "badAlg")


def _status_info_value(status: int, bit: int, text: str) -> rfc9810.PKIStatusInfo:
    info = rfc9810.PKIStatusInfo()
    info["status"] = status
    info["statusString"].append(text)
    info["failInfo"] = rfc9810.PKIFailureInfo(tuple(int(i == bit) for i in range(bit + 1)))
    return info


def test_error_and_pkiconf_from_a_client_read_back(corpus, live_ca):
    """What our builders write, parse_request reads: the status of an `error`, a pkiConf."""
    genm = cmp.parse_request(_request(corpus, "genm"))
    for reply, kind in ((cmp.error_reply(genm.header, {"badRequest", "systemFailure"}, "stop"), "error"),
                        (cmp.confirm_reply(genm), "pkiconf")):
        request = cmp.parse_request(cmp.protect_with_pbm(reply, SECRET, live_ca.issuing_cert.subject, b"kid"))
        assert request.body_type == kind and request.header.recip_nonce == genm.header.sender_nonce
        cmp.verify_pbm(request, SECRET)
    assert request.error is None
    error = cmp.parse_request(cmp.protect_with_pbm(
        cmp.error_reply(None, {"badRequest", "systemFailure"}, "stop"), SECRET, live_ca.issuing_cert.subject, None))
    assert error.error == cmp.StatusInfo("rejection", frozenset({"badRequest", "systemFailure"}), "stop")


def test_genm(corpus):
    request = cmp.parse_request(_request(corpus, "genm"))
    assert request.info_types == ("caCerts",) and request.old_root is None


# Refusals with the failure bit a reply names.

def test_wrong_secret_is_bad_message_check(corpus):
    request = cmp.parse_request(_request(corpus, "ir"))
    with pytest.raises(cmp.CmpError) as caught:
        cmp.verify_pbm(request, b"ABCD-EFGH-JKLN")
    assert caught.value.code == "cmp_bad_mac" and caught.value.fail_info == {"badMessageCheck"}
    assert caught.value.header == request.header
    assert isinstance(caught.value, PkiError)


def test_a_mac_of_the_wrong_length_costs_no_derivation(corpus, monkeypatch):
    request = cmp.parse_request(_request(corpus, "ir"))
    monkeypatch.setattr(protection, "pbm_mac", _must_not_derive)
    with pytest.raises(cmp.CmpError):
        cmp.verify_pbm(dataclasses.replace(request, protection_value=request.protection_value + b"\0"), SECRET)


def _must_not_derive(*args):
    raise AssertionError("a key was derived")


def _pbm_edit(corpus, **fields):
    def change(message):
        algorithm = message["header"]["protectionAlg"]
        params = decoder.decode(bytes(algorithm["parameters"]), asn1Spec=rfc4211.PBMParameter())[0]
        for name, value in fields.items():
            if name in ("owf", "mac"):
                params[name]["algorithm"] = univ.ObjectIdentifier(value)
            else:
                params[name] = value
        algorithm["parameters"] = encoder.encode(params)
    return _edit(_request(corpus, "ir"), change)


@pytest.mark.parametrize("fields", [
    {"iterationCount": cmp.PBM_MAX_ITERATIONS + 1}, {"iterationCount": 2**64}, {"iterationCount": 99},
    {"iterationCount": 0}, {"iterationCount": -1}, {"salt": b"s" * 65}, {"salt": b"s" * 7},
    {"owf": "1.2.840.113549.2.5"}, {"owf": "1.3.14.3.2.26"}, {"mac": "1.2.840.113549.2.5"},
], ids=str)
def test_pbm_parameters_outside_the_caps_are_bad_alg(corpus, fields, monkeypatch):
    monkeypatch.setattr(protection.hashlib, "new", _must_not_derive)
    error = _refused(_pbm_edit(corpus, **fields), "badAlg")
    assert error.header is not None and error.header.sender_kid == REF.encode()


def test_caps_are_checked_again_before_deriving(corpus, monkeypatch):
    request = cmp.parse_request(_request(corpus, "ir"))
    monkeypatch.setattr(protection.hashlib, "new", _must_not_derive)
    for params in (dataclasses.replace(request.protection, iterations=10**12),
                   dataclasses.replace(request.protection, salt=b"s" * 10**6)):
        with pytest.raises(cmp.CmpError) as caught:
            cmp.verify_pbm(dataclasses.replace(request, protection=params), SECRET)
        assert caught.value.fail_info == {"badAlg"}


def test_the_cap_is_where_the_docs_say():
    assert (cmp.PBM_MIN_ITERATIONS, cmp.PBM_MAX_ITERATIONS) == (100, 10_000)
    assert (min(cmp.PBM_SALT_LENGTHS), max(cmp.PBM_SALT_LENGTHS)) == (8, 64)


def test_pbm_at_the_cap_still_verifies(corpus):
    der = _pbm_edit(corpus, iterationCount=cmp.PBM_MAX_ITERATIONS)
    request = cmp.parse_request(der)
    assert request.protection.iterations == cmp.PBM_MAX_ITERATIONS
    with pytest.raises(cmp.CmpError):                      # the MAC was made with 500
        cmp.verify_pbm(request, SECRET)


def _flip_pop(message):
    pop = message["body"]["ir"][0]["popo"]["signature"]
    octets = bytearray(pop["signature"].asOctets())
    octets[-1] ^= 1
    pop["signature"] = univ.BitString.fromOctetString(bytes(octets))


def test_a_broken_proof_of_possession_is_bad_pop(corpus):
    error = _refused(_edit(_request(corpus, "ir"), _flip_pop), "badPOP", "cmp_pop")
    assert error.header.transaction_id == cmp.parse_request(_request(corpus, "ir")).header.transaction_id


def test_ra_verified_is_not_a_proof_of_possession(corpus):
    def ra_verified(message):
        message["body"]["ir"][0]["popo"]["raVerified"] = ""
    _refused(_edit(_request(corpus, "ir"), ra_verified), "badPOP")


def test_a_template_without_a_key_is_bad_cert_template(corpus):
    def no_key(message):
        message["body"]["ir"][0]["certReq"]["certTemplate"]["publicKey"] = univ.noValue
    _refused(_edit(_request(corpus, "ir"), no_key), "badCertTemplate")


def test_one_certificate_per_request(corpus):
    def twice(message):
        message["body"]["ir"].append(message["body"]["ir"][0])
    _refused(_edit(_request(corpus, "ir"), twice), "badRequest", "cmp_one_request")


def test_a_pkcs10_with_a_bad_signature_is_bad_pop(corpus):
    def flip(message):
        csr = message["body"]["p10cr"]
        octets = bytearray(csr["signature"].asOctets())
        octets[5] ^= 1
        csr["signature"] = univ.BitString.fromOctetString(bytes(octets))
    _refused(_edit(_request(corpus, "p10cr"), flip), "badPOP")


@pytest.mark.parametrize("pvno", [0, 1, 4])
def test_other_versions_are_unsupported(corpus, pvno):
    def version(message):
        message["header"]["pvno"] = pvno
    _refused(_edit(_request(corpus, "genm"), version), "unsupportedVersion")


def test_a_reply_body_is_not_a_request(corpus):
    reply = corpus["messages"]["ir"][0][1]
    error = _refused(reply, "badRequest", "cmp_body_type")
    assert error.header.transaction_id == _header(reply)["transactionID"]


def test_unknown_protection_algorithms_are_bad_alg(corpus):
    for oid in ("1.2.840.113533.7.66.30", "1.2.840.113549.1.1.5", "1.3.101.112"):   # DHBasedMac, SHA-1 RSA, Ed25519
        def other(message, oid=oid):
            message["header"]["protectionAlg"]["algorithm"] = univ.ObjectIdentifier(oid)
        _refused(_edit(_request(corpus, "kur"), other), "badAlg")


def test_protection_without_an_algorithm_is_refused(corpus):
    def strip(message):
        message["header"]["protectionAlg"] = univ.noValue
    _refused(_edit(_request(corpus, "ir"), strip), "badMessageCheck")


def test_an_unprotected_request_parses_but_verifies_nothing(corpus):
    def strip(message):
        message["header"]["protectionAlg"] = univ.noValue
        message["protection"] = univ.noValue
    request = cmp.parse_request(_edit(_request(corpus, "genm"), strip))
    assert request.protection is None
    for verify, argument in ((cmp.verify_pbm, SECRET), (cmp.verify_signature, corpus["cert"])):
        with pytest.raises(cmp.CmpError) as caught:
            verify(request, argument)
        assert caught.value.fail_info == {"wrongIntegrity"}


def test_size_limit():
    _refused(b"\x30\x84\x00\x01\x00\x00" + bytes(65536), "badDataFormat")
    with pytest.raises(cmp.CmpError):
        cmp.parse_request(b"\x30\x03\x02\x01\x00", max_bytes=4)
    for nothing in (b"", "text", None):
        with pytest.raises(cmp.CmpError):
            cmp.parse_request(nothing)


# Replies.

def _header(der: bytes):
    return decoder.decode(der, asn1Spec=rfc9810.PKIMessage())[0]["header"]


def _decoded(der: bytes):
    message, rest = decoder.decode(der, asn1Spec=rfc9810.PKIMessage())
    assert not rest
    return message


def _protected_part(message) -> bytes:
    part = rfc9810.ProtectedPart()
    part["header"], part["body"] = message["header"], message["body"]
    return encoder.encode(part)


def _pbm_verifies(message, secret: bytes) -> bool:
    params = decoder.decode(bytes(message["header"]["protectionAlg"]["parameters"]),
                            asn1Spec=rfc4211.PBMParameter())[0]
    pbm = protection.pbm_parameters(bytes(params["salt"]), str(params["owf"]["algorithm"]),
                                    int(params["iterationCount"]), str(params["mac"]["algorithm"]))
    return protection.pbm_matches(pbm, secret, _protected_part(message), message["protection"].asOctets())


def _cert(value) -> x509.Certificate:
    encoded = encoder.encode(value)
    # A certificate under an EXPLICIT tag ([0] certificate) is encoded with its tag around it.
    return x509.load_der_x509_certificate(encoded if encoded[0] == 0x30 else der.value(encoded))


def test_certificate_reply_echoes_and_is_protected_by_pbm(corpus, live_ca):
    request = cmp.parse_request(_request(corpus, "ir"))
    now = dt.datetime(2026, 12, 3, 5, 0, tzinfo=dt.UTC)
    reply = cmp.certificate_reply(request, corpus["cert"], chain=[live_ca.issuing_cert],
                                  ca_pubs=[live_ca.root_cert], implicit_confirm=True, now=now)
    message = _decoded(cmp.protect_with_pbm(reply, SECRET, live_ca.issuing_cert.subject, REF.encode()))
    header = message["header"]
    assert int(header["pvno"]) == 2
    assert bytes(header["transactionID"]) == request.header.transaction_id
    assert bytes(header["recipNonce"]) == request.header.sender_nonce
    assert len(bytes(header["senderNonce"])) == 16 and bytes(header["senderNonce"]) != request.header.sender_nonce
    assert header["messageTime"].asDateTime == now and bytes(header["senderKID"]) == REF.encode()
    assert encoder.encode(header["recipient"]) == request.header.sender_general_name
    assert [str(i["infoType"]) for i in header["generalInfo"]] == ["1.3.6.1.5.5.7.4.13"]   # implicitConfirm
    assert _pbm_verifies(message, SECRET) and not _pbm_verifies(message, b"other")
    ip = message["body"]["ip"]
    assert [_cert(c) for c in ip["caPubs"]] == [live_ca.root_cert]
    [response] = ip["response"]
    assert int(response["certReqId"]) == 0 and int(response["status"]["status"]) == 0
    assert _cert(response["certifiedKeyPair"]["certOrEncCert"]["certificate"]) == corpus["cert"]
    assert [_cert(c) for c in message["extraCerts"]] == [live_ca.issuing_cert]


def test_implicit_confirmation_is_granted_only_when_asked(corpus):
    request = cmp.parse_request(_request(corpus, "cr"))
    assert not request.header.implicit_confirm
    reply = cmp.certificate_reply(request, corpus["cert"], implicit_confirm=True)
    assert not reply.header["generalInfo"].isValue
    assert reply.body.getName() == "cp"
    p10cr = cmp.parse_request(_request(corpus, "p10cr"))
    reply = cmp.certificate_reply(p10cr, corpus["cert"])
    assert reply.body.getName() == "cp" and int(reply.body["cp"]["response"][0]["certReqId"]) == -1


def _signed_by(message, cert: x509.Certificate) -> bool:
    try:
        cert.public_key().verify(message["protection"].asOctets(), _protected_part(message),
                                 padding.PKCS1v15(), hashes.SHA256())
    except Exception:
        return False
    return True


def test_signed_reply_names_its_signer(corpus, cmp_signer_pair, live_ca):
    signer_cert, signer_key = cmp_signer_pair
    request = cmp.parse_request(_request(corpus, "rr"))
    message = _decoded(cmp.protect_with_signature(cmp.revocation_reply(request), signer_key, signer_cert,
                                                  chain=[live_ca.issuing_cert]))
    assert _signed_by(message, signer_cert) and not _signed_by(message, live_ca.issuing_cert)
    header = message["header"]
    assert str(header["protectionAlg"]["algorithm"]) == "1.2.840.113549.1.1.11"
    assert der.value(encoder.encode(header["sender"]["directoryName"])) == signer_cert.subject.public_bytes()
    ski = signer_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    assert bytes(header["senderKID"]) == ski
    assert [_cert(c) for c in message["extraCerts"]] == [signer_cert, live_ca.issuing_cert]
    assert [int(s["status"]) for s in message["body"]["rp"]["status"]] == [0]


def test_a_signer_must_match_its_certificate(corpus, cmp_signer_pair, live_ca):
    request = cmp.parse_request(_request(corpus, "rr"))
    with pytest.raises(cmp.CmpError):
        cmp.protect_with_signature(cmp.revocation_reply(request), live_ca.issuing_key, cmp_signer_pair[0])


def test_a_key_in_a_pkcs11_token_signs_replies(corpus, live_ca, softhsm):
    token = Pkcs11Token(SOFTHSM_MODULE, softhsm["CERTCENTER_PKCS11_TOKEN"], softhsm["CERTCENTER_PKCS11_PIN"])
    signer = token.generate("cmp-test")
    signer_cert, _ = cmp_signer(live_ca, dt.datetime.now(dt.UTC), public_key=signer.public_key())
    request = cmp.parse_request(_request(corpus, "genm"))
    message = _decoded(cmp.protect_with_signature(cmp.genp_reply(request, ca_certs=[live_ca.root_cert]),
                                                  signer, signer_cert))
    assert _signed_by(message, signer_cert)


def _status(info) -> tuple:
    bits = info["failInfo"]
    failed = {name for i, name in enumerate(cmp.FAILURE_BITS) if bits.isValue and i < len(bits) and bits[i]}
    return int(info["status"]), failed, " ".join(str(s) for s in info["statusString"])


def test_rejections_take_the_shape_the_request_expects(corpus):
    kur = cmp.parse_request(_request(corpus, "kur"))
    reply = cmp.rejection_reply(kur, {"notAuthorized"}, "outside the renewal window")
    [response] = reply.body["kup"]["response"]
    assert _status(response["status"]) == (2, {"notAuthorized"}, "outside the renewal window")
    assert not response["certifiedKeyPair"].isValue
    rr = cmp.parse_request(_request(corpus, "rr"))
    reply = cmp.rejection_reply(rr, {"badCertId", "certRevoked"}, "already revoked")
    assert _status(reply.body["rp"]["status"][0]) == (2, {"badCertId", "certRevoked"}, "already revoked")
    genm = cmp.parse_request(_request(corpus, "genm"))
    reply = cmp.rejection_reply(genm, {"notAuthorized"}, "no")
    assert _status(reply.body["error"]["pKIStatusInfo"]) == (2, {"notAuthorized"}, "no")


def test_error_reply_to_what_could_not_be_read(cmp_signer_pair):
    with pytest.raises(cmp.CmpError) as caught:
        cmp.parse_request(b"\x30\x03\x02\x01\x02")
    error = caught.value
    assert error.header is None and error.fail_info == {"badDataFormat"}
    message = _decoded(cmp.protect_with_signature(cmp.error_reply(error.header, error.fail_info, error.code),
                                                  cmp_signer_pair[1], cmp_signer_pair[0]))
    header = message["header"]
    assert not header["transactionID"].isValue and not header["recipNonce"].isValue
    assert encoder.encode(header["recipient"]) == b"\xa4\x02\x30\x00"     # the NULL-DN
    assert _status(message["body"]["error"]["pKIStatusInfo"]) == (2, {"badDataFormat"}, "cmp_malformed")


def test_confirm_and_genp_replies(corpus, live_ca):
    conf = cmp.parse_request(_request(corpus, "certConf"))
    assert cmp.confirm_reply(conf).body.getName() == "pkiconf"
    genm = cmp.parse_request(_request(corpus, "genm"))
    [info] = cmp.genp_reply(genm, ca_certs=[live_ca.issuing_cert, live_ca.root_cert]).body["genp"]
    certs = decoder.decode(bytes(info["infoValue"]), asn1Spec=rfc9810.CaCertsValue())[0]
    assert [_cert(c) for c in certs] == [live_ca.issuing_cert, live_ca.root_cert]
    [info] = cmp.genp_reply(genm).body["genp"]
    assert not info["infoValue"].isValue                 # no CA certificates to offer


@pytest.mark.parametrize("old_root, answered", [(None, True), ("same", False), ("other", True)])
def test_root_ca_cert_is_answered_with_an_update_only_when_needed(corpus, live_ca, ca_keys, old_root, answered):
    genm = cmp.parse_request(_request(corpus, "genm"))
    old = {None: None, "same": live_ca.root_cert, "other": ca_keys.issuing_cert}[old_root]
    genm = dataclasses.replace(genm, info_types=("rootCaCert", "signKeyPairTypes"), old_root=old)
    update, unsupported = cmp.genp_reply(genm, root_cert=live_ca.root_cert).body["genp"]
    assert str(update["infoType"]) == "1.3.6.1.5.5.7.4.18"               # rootCaKeyUpdate
    assert update["infoValue"].isValue == answered
    if answered:
        content = decoder.decode(bytes(update["infoValue"]), asn1Spec=rfc9810.RootCaKeyUpdateContent())[0]
        assert _cert(content["newWithNew"]) == live_ca.root_cert
    oids = decoder.decode(bytes(unsupported["infoValue"]), asn1Spec=rfc9810.UnsupportedOIDsValue())[0]
    assert [str(o) for o in oids] == ["1.3.6.1.5.5.7.4.2"]


# Damaged input: only CmpError, whatever arrives.

def _parses_or_refuses(data: bytes, cert: x509.Certificate | None = None) -> None:
    """`data` is refused with one failure bit, or parses and then fails verification only with
    CmpError."""
    try:
        request = cmp.parse_request(data)
    except cmp.CmpError as exc:
        assert len(exc.fail_info) == 1 and exc.fail_info <= set(cmp.FAILURE_BITS)
        return
    checks = [(cmp.verify_pbm, SECRET)] + ([(cmp.verify_signature, cert)] if cert else [])
    for verify, argument in checks:
        try:
            verify(request, argument)
        except cmp.CmpError:
            pass


def test_truncated_at_every_length(corpus):
    for exchanges in corpus["messages"].values():
        der = exchanges[0][0]
        for size in range(len(der)):
            _refused_any(der[:size])


def _refused_any(data: bytes):
    with pytest.raises(cmp.CmpError):
        cmp.parse_request(data)


@FUZZ
@given(st.data())
def test_bit_flips(corpus, data):
    kind = data.draw(st.sampled_from(sorted(corpus["messages"])))
    der = bytearray(corpus["messages"][kind][0][0])
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(der) - 1))
        der[at] ^= 1 << data.draw(st.integers(0, 7))
    _parses_or_refuses(bytes(der), corpus["cert"])


@FUZZ
@given(st.data())
def test_spliced_bytes(corpus, data):
    kind = data.draw(st.sampled_from(sorted(corpus["messages"])))
    der = corpus["messages"][kind][0][0]
    at = data.draw(st.integers(0, len(der)))
    cut = data.draw(st.integers(0, 16))
    _parses_or_refuses(der[:at] + data.draw(st.binary(max_size=16)) + der[at + cut:], corpus["cert"])


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2048))
def test_random_bytes(data):
    _parses_or_refuses(data)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(cmp.PBM_MAX_ITERATIONS + 1, 2**128))
def test_any_iteration_count_over_the_cap_is_refused_unworked(corpus, iterations):
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(protection.hashlib, "new", _must_not_derive)
        _refused(_pbm_edit(corpus, iterationCount=iterations), "badAlg", "cmp_pbm_parameters")


def test_deep_nesting():
    depth = 20000
    data = b"".join(b"\x30\x84" + (5 * (depth - i)).to_bytes(4, "big") for i in range(1, depth + 1))
    _refused_any(data[:cmp.MAX_REQUEST_BYTES])
    _refused_any(b"\x30\x80" * 1000)                # indefinite lengths are not DER
