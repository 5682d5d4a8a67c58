"""Reading a CMP request (RFC 4210/9810 PKIMessage, CRMF RFC 4211) into plain values.

`parse_request` never lets a decoder's exception out: every refusal is a CmpError naming the
PKIFailureInfo bit for the `error` reply. It checks what the message itself can prove (its form,
its algorithms against our lists and caps, the proof of possession of a requested key) and leaves
to the caller what needs a secret or a database: `verify_pbm` and `verify_signature` check the
protection, and who may ask for what is the services' business. A request follows the Lightweight
CMP Profile (RFC 9483) in asking for one certificate, or revoking one, per message.
"""

import datetime as dt
import hmac
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from pyasn1.codec.der import decoder as der_decoder
from pyasn1.codec.der import encoder as der_encoder
from pyasn1.error import PyAsn1Error
from pyasn1.type import char, namedtype, univ
from pyasn1_alt_modules import rfc4211, rfc5280, rfc9810

from ..errors import bounded_bytes
from ..signer import der_tlv
from . import der
from .errors import FAILURE_BITS, CmpError
from .protection import (
    HASHES,
    ID_PASSWORD_BASED_MAC,
    PbmParameters,
    SignatureAlgorithm,
    pbm_matches,
    pbm_parameters,
    signature_algorithm,
    signature_valid,
)

# An ir with an RSA-4096 key is under 2 KB; a kur or rr carrying a chain of three certificates in
# extraCerts about 5 KB. Anything larger is refused before a decoder sees it.
MAX_REQUEST_BYTES = 64 * 1024

BODY_TYPES = ("ir", "cr", "p10cr", "kur", "rr", "certConf", "genm", "pkiconf", "error")

ID_IT = "1.3.6.1.5.5.7.4"
ID_IT_IMPLICIT_CONFIRM = ID_IT + ".13"
ID_REG_CTRL_OLD_CERT_ID = "1.3.6.1.5.5.7.5.1.5"
ID_CE_CRL_REASONS = "2.5.29.21"
# RFC 9480/9810 general message types, by the names clients use (`openssl cmp -infotype`).
INFO_TYPES = {
    ID_IT + ".2": "signKeyPairTypes",
    ID_IT + ".17": "caCerts",
    ID_IT + ".18": "rootCaKeyUpdate",
    ID_IT + ".19": "certReqTemplate",
    ID_IT + ".20": "rootCaCert",
    ID_IT + ".21": "certProfile",
    ID_IT + ".22": "crlStatusList",
}
# CRLReason (RFC 5280 5.3.1) by its ENUMERATED value; 7 is unused.
_REASONS = dict(enumerate((
    x509.ReasonFlags.unspecified, x509.ReasonFlags.key_compromise, x509.ReasonFlags.ca_compromise,
    x509.ReasonFlags.affiliation_changed, x509.ReasonFlags.superseded,
    x509.ReasonFlags.cessation_of_operation, x509.ReasonFlags.certificate_hold, None,
    x509.ReasonFlags.remove_from_crl, x509.ReasonFlags.privilege_withdrawn,
    x509.ReasonFlags.aa_compromise)))
# Text the client sends (statusString, errorDetails) is kept for logs, not without bound.
_MAX_TEXT = 500
_MAX_ID = 2**31


@dataclass(frozen=True)
class Header:
    """The PKIHeader fields a reply needs or a service checks."""
    pvno: int
    sender: x509.Name | None                # None when the GeneralName is not a directoryName
    recipient: x509.Name | None
    message_time: dt.datetime | None
    sender_kid: bytes | None                # with PBM, the reference number
    transaction_id: bytes | None
    sender_nonce: bytes | None
    recip_nonce: bytes | None
    implicit_confirm: bool                  # the client asked for implicit confirmation
    sender_general_name: bytes = b""        # the sender as sent (DER), echoed as our recipient


@dataclass(frozen=True)
class CertificateRequest:
    """One CertReqMsg (ir, cr, kur) or the PKCS#10 request of a p10cr, its proof of possession
    already verified."""
    cert_req_id: int                        # -1 for p10cr (RFC 9480 2.8)
    public_key: object                      # a cryptography public key; its policy is the caller's
    subject: x509.Name | None
    old_cert_serial: int | None = None      # kur: the oldCertID control
    old_cert_issuer: x509.Name | None = None
    csr: x509.CertificateSigningRequest | None = None


@dataclass(frozen=True)
class RevocationRequest:
    """The one RevDetails of an rr."""
    serial: int
    issuer: x509.Name
    reason: x509.ReasonFlags | None


@dataclass(frozen=True)
class StatusInfo:
    """PKIStatusInfo: status name, failure bit names, the texts joined."""
    status: str
    fail_info: frozenset = frozenset()
    text: str = ""


@dataclass(frozen=True)
class Confirmation:
    """One CertStatus of a certConf: the client accepts (or rejects) the certificate it hashed."""
    cert_hash: bytes
    cert_req_id: int
    status: StatusInfo
    hash_algorithm: object = None          # a cryptography hash from hashAlg (pvno 3), else None


@dataclass(frozen=True)
class Request:
    """A parsed CMP request. `protection` is PbmParameters, a SignatureAlgorithm or None
    (unprotected); `protected_part` and `protection_value` are what verify_pbm and
    verify_signature check."""
    body_type: str
    header: Header
    protection: PbmParameters | SignatureAlgorithm | None
    protection_value: bytes
    protected_part: bytes
    extra_certs: tuple = ()
    certificate_request: CertificateRequest | None = None     # ir, cr, p10cr, kur
    revocation: RevocationRequest | None = None               # rr
    confirmations: tuple = ()                                 # certConf
    info_types: tuple = ()                                    # genm: names, or dotted OIDs
    old_root: x509.Certificate | None = None                  # genm rootCaCert: the client's root
    error: StatusInfo | None = None                           # error


def _bad(detail: str) -> CmpError:
    return CmpError("cmp_malformed", "badDataFormat", detail)


def _decode(data: bytes, spec):
    value, rest = der_decoder.decode(data, asn1Spec=spec)
    if rest:
        raise _bad("trailing bytes")
    return value


def _oid(algorithm) -> str:
    return str(algorithm["algorithm"])


def _name(name) -> x509.Name:
    """A pyasn1 Name as a cryptography Name (attribute values as text)."""
    rdns = []
    for rdn in name["rdnSequence"]:
        attributes = []
        for attribute in rdn:
            text, rest = der_decoder.decode(bytes(attribute["value"]))
            if rest or not isinstance(text, char.AbstractCharacterString):
                raise _bad("a name attribute is not a string")
            attributes.append(x509.NameAttribute(x509.ObjectIdentifier(str(attribute["type"])), str(text)))
        rdns.append(x509.RelativeDistinguishedName(attributes))
    return x509.Name(rdns)


def _directory_name(general_name) -> x509.Name | None:
    if general_name.getName() != "directoryName":
        return None
    return _name(general_name["directoryName"])


def _optional_bytes(value) -> bytes | None:
    return bytes(value) if value.isValue else None


def _header(header) -> Header:
    pvno = int(header["pvno"])
    if pvno not in (2, 3):
        raise CmpError("cmp_version", "unsupportedVersion", f"pvno {pvno}")
    implicit_confirm = header["generalInfo"].isValue and any(
        str(info["infoType"]) == ID_IT_IMPLICIT_CONFIRM for info in header["generalInfo"])
    return Header(
        pvno=pvno,
        sender=_directory_name(header["sender"]),
        recipient=_directory_name(header["recipient"]),
        message_time=(header["messageTime"].asDateTime.astimezone(dt.UTC)
                      if header["messageTime"].isValue else None),
        sender_kid=_optional_bytes(header["senderKID"]),
        transaction_id=_optional_bytes(header["transactionID"]),
        sender_nonce=_optional_bytes(header["senderNonce"]),
        recip_nonce=_optional_bytes(header["recipNonce"]),
        implicit_confirm=implicit_confirm,
        sender_general_name=der_encoder.encode(header["sender"]),
    )


def _protection(header):
    if not header["protectionAlg"].isValue:
        return None
    algorithm = header["protectionAlg"]
    if _oid(algorithm) != ID_PASSWORD_BASED_MAC:
        return signature_algorithm(_oid(algorithm))
    if not algorithm["parameters"].isValue:
        raise _bad("PBM without parameters")
    params = _decode(bytes(algorithm["parameters"]), rfc4211.PBMParameter())
    iterations = int(params["iterationCount"])
    return pbm_parameters(bytes(params["salt"]), _oid(params["owf"]), iterations, _oid(params["mac"]))


def _bits(bit_string) -> bytes:
    if len(bit_string) % 8:
        raise _bad("a signature or MAC is not whole octets")
    return bit_string.asOctets()


def _certificate(data: bytes) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(data)
    except (ValueError, x509.InvalidVersion) as exc:
        raise _bad(f"certificate: {exc}") from None


def _public_key(template) -> object:
    if not template["publicKey"].isValue:
        raise CmpError("cmp_no_public_key", "badCertTemplate", "no publicKey in the template "
                       "(central key generation is not offered)")
    # The template's [6] IMPLICIT SubjectPublicKeyInfo differs from the SEQUENCE only in its tag.
    spki = b"\x30" + der_encoder.encode(template["publicKey"])[1:]
    try:
        return serialization.load_der_public_key(spki)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise CmpError("cmp_public_key", "badCertTemplate", f"public key: {exc}") from None


def _old_cert_id(controls) -> tuple[int | None, x509.Name | None]:
    for control in controls if controls.isValue else ():
        if str(control["type"]) == ID_REG_CTRL_OLD_CERT_ID:
            old = _decode(bytes(control["value"]), rfc4211.OldCertId())
            return int(old["serialNumber"]), _directory_name(old["issuer"])
    return None, None


def _check_pop(message, public_key, cert_request_der: bytes) -> None:
    """RFC 4211 4.1: a signature by the requested key over the DER CertRequest. Other kinds of
    proof (raVerified, key encipherment) are not offered: every key we certify signs."""
    popo = message["popo"]
    if not popo.isValue or popo.getName() != "signature":
        raise CmpError("cmp_pop", "badPOP", "no signature proof of possession")
    signing_key = popo["signature"]
    if signing_key["poposkInput"].isValue:
        raise CmpError("cmp_pop", "badPOP", "poposkInput is for requests without a subject")
    algorithm = signature_algorithm(_oid(signing_key["algorithmIdentifier"]))
    if not signature_valid(public_key, algorithm, _bits(signing_key["signature"]), cert_request_der):
        raise CmpError("cmp_pop", "badPOP", "the proof of possession does not verify")


def _cert_req_messages(messages, body_der: bytes) -> CertificateRequest:
    if len(messages) != 1:
        raise CmpError("cmp_one_request", "badRequest", f"{len(messages)} CertReqMsg (one allowed)")
    message = messages[0]
    request = message["certReq"]
    cert_req_id = int(request["certReqId"])
    if not 0 <= cert_req_id < _MAX_ID:
        raise CmpError("cmp_cert_req_id", "badRequest", f"certReqId {cert_req_id}")
    template = request["certTemplate"]
    public_key = _public_key(template)
    # body [n] { CertReqMessages { CertReqMsg { CertRequest, … } } }: the CertRequest as sent.
    [messages_der] = der.elements(der.value(body_der))
    first_message = der.elements(der.value(messages_der))[0]
    cert_request_der = der.elements(der.value(first_message))[0]
    _check_pop(message, public_key, cert_request_der)
    serial, issuer = _old_cert_id(request["controls"])
    subject = _name(template["subject"]) if template["subject"].isValue else None
    return CertificateRequest(cert_req_id=cert_req_id, public_key=public_key, subject=subject,
                              old_cert_serial=serial, old_cert_issuer=issuer)


def _p10cr(body_der: bytes) -> CertificateRequest:
    try:
        csr = x509.load_der_x509_csr(der.value(body_der))
        public_key = csr.public_key()
        valid = csr.is_signature_valid
    except (ValueError, UnsupportedAlgorithm, x509.InvalidVersion) as exc:
        raise CmpError("cmp_csr", "badCertTemplate", f"p10cr: {exc}") from None
    if not valid:
        raise CmpError("cmp_pop", "badPOP", "the PKCS#10 signature does not verify")
    return CertificateRequest(cert_req_id=-1, public_key=public_key, subject=csr.subject, csr=csr)


def _reason(extensions) -> x509.ReasonFlags | None:
    for extension in extensions if extensions.isValue else ():
        if str(extension["extnID"]) == ID_CE_CRL_REASONS:
            code = int(_decode(bytes(extension["extnValue"]), rfc5280.CRLReason()))
            if _REASONS.get(code) is None:
                raise CmpError("cmp_reason", "badRequest", f"CRLReason {code}")
            return _REASONS[code]
    return None


def _rr(details) -> RevocationRequest:
    if len(details) != 1:
        raise CmpError("cmp_one_request", "badRequest", f"{len(details)} RevDetails (one allowed)")
    template = details[0]["certDetails"]
    if not template["serialNumber"].isValue or not template["issuer"].isValue:
        raise CmpError("cmp_cert_id", "badCertId", "rr without serialNumber and issuer")
    return RevocationRequest(serial=int(template["serialNumber"]), issuer=_name(template["issuer"]),
                             reason=_reason(details[0]["crlEntryDetails"]))


def _status_info(info) -> StatusInfo:
    status = int(info["status"])
    name = rfc9810.PKIStatus.namedValues.getName(status)
    if name is None:
        raise _bad(f"PKIStatus {status}")
    fail_info = frozenset(bit_name for bit, bit_name in enumerate(FAILURE_BITS)
                          if info["failInfo"].isValue and bit < len(info["failInfo"])
                          and info["failInfo"][bit])
    return StatusInfo(status=name, fail_info=fail_info, text=_text(info["statusString"]))


def _text(free_text) -> str:
    return " ".join(str(line) for line in free_text)[:_MAX_TEXT] if free_text.isValue else ""


def _cert_conf(statuses) -> tuple:
    confirmations = []
    for status in statuses:
        hash_algorithm = None
        if status["hashAlg"].isValue:
            if _oid(status["hashAlg"]) not in HASHES:
                raise CmpError("cmp_unsupported_algorithm", "badAlg", f"hashAlg {_oid(status['hashAlg'])}")
            hash_algorithm = HASHES[_oid(status["hashAlg"])]()
        confirmations.append(Confirmation(
            cert_hash=bytes(status["certHash"]), cert_req_id=int(status["certReqId"]),
            status=_status_info(status["statusInfo"]) if status["statusInfo"].isValue
            else StatusInfo("accepted"),
            hash_algorithm=hash_algorithm))
    return tuple(confirmations)


def _genm(infos) -> tuple[tuple, x509.Certificate | None]:
    names, old_root = [], None
    for info in infos:
        oid = str(info["infoType"])
        names.append(INFO_TYPES.get(oid, oid))
        if INFO_TYPES.get(oid) == "rootCaCert" and info["infoValue"].isValue:
            old_root = _certificate(bytes(info["infoValue"]))
    return tuple(names), old_root


# pyasn1 raises its own errors and, on some malformed input, Python's; cryptography raises
# ValueError. A RecursionError comes from deeply nested garbage. CmpError is a ValueError too,
# and is caught first.
_DECODER_ERRORS = (PyAsn1Error, ValueError, TypeError, IndexError, KeyError, AttributeError,
                   OverflowError, RecursionError)


def _guarded(function, *args, header: Header | None = None):
    """`function(*args)`, any failure a CmpError that carries `header` when it is known."""
    try:
        return function(*args)
    except CmpError as exc:
        exc.header = exc.header or header
        raise
    except _DECODER_ERRORS as exc:
        error = _bad(f"{type(exc).__name__}: {exc}")
        error.header = header
        raise error from None


def _parts(data: bytes) -> list[bytes]:
    [outer] = der.elements(data)
    parts = der.elements(der.value(outer))
    if outer[0] != 0x30 or len(parts) < 2:
        raise _bad("not a PKIMessage")
    return parts


class _Envelope(univ.Sequence):
    """PKIMessage with header and body left as bytes. The body is decoded on its own, under the
    one alternative its tag names: pyasn1 spells out the whole expected type in the message of a
    decoding error, and for all of PKIBody that takes it half a second."""
    componentType = namedtype.NamedTypes(
        namedtype.NamedType("header", univ.Any()),
        namedtype.NamedType("body", univ.Any()),
        *rfc9810.PKIMessage.componentType.namedTypes[2:],
    )


# PKIBody's alternatives by their tag octet: each is [n] EXPLICIT, so constructed, 0xA0 + n.
_BODY_ALTERNATIVES = {0xA0 + alternative.asn1Object.tagSet.superTags[-1].tagId: alternative
                      for alternative in rfc9810.PKIBody.componentType.namedTypes}


def _body(body_der: bytes):
    """(body type, its decoded content)."""
    alternative = _BODY_ALTERNATIVES.get(body_der[0])
    if alternative is None:
        raise _bad("not a PKIBody")
    if alternative.name not in BODY_TYPES:
        raise CmpError("cmp_body_type", "badRequest", f"a {alternative.name} body is not a request we answer")
    return alternative.name, _decode(body_der, alternative.asn1Object)


def _message(data: bytes, raw_header, header: Header, parts: list[bytes]) -> Request:
    message = _decode(data, _Envelope())
    protection = _protection(raw_header)
    protection_value = _bits(message["protection"]) if message["protection"].isValue else b""
    if (protection is None) != (not protection_value):
        raise CmpError("cmp_protection", "badMessageCheck", "protectionAlg and protection disagree")
    extra_certs = ()
    if message["extraCerts"].isValue:
        extra_certs = tuple(_certificate(der_encoder.encode(cert)) for cert in message["extraCerts"])
    body_der = parts[1]
    body_type, content = _body(body_der)
    fields = {}
    if body_type in ("ir", "cr", "kur"):
        fields["certificate_request"] = _cert_req_messages(content, body_der)
    elif body_type == "p10cr":
        fields["certificate_request"] = _p10cr(body_der)
    elif body_type == "rr":
        fields["revocation"] = _rr(content)
    elif body_type == "certConf":
        fields["confirmations"] = _cert_conf(content)
    elif body_type == "genm":
        fields["info_types"], fields["old_root"] = _genm(content)
    elif body_type == "error":
        fields["error"] = _status_info(content["pKIStatusInfo"])
    return Request(body_type=body_type, header=header, protection=protection,
                   protection_value=protection_value,
                   protected_part=der_tlv(0x30, parts[0] + body_der),
                   extra_certs=extra_certs, **fields)


def parse_request(data: bytes, max_bytes: int = MAX_REQUEST_BYTES) -> Request:
    """The CMP request in `data` (DER PKIMessage), or CmpError with the PKIFailureInfo to answer.

    Checked here: the form (badDataFormat), pvno 2 or 3 (unsupportedVersion), the body type
    (badRequest for anything but ir, cr, p10cr, kur, rr, certConf, genm, pkiConf and error), the
    protection algorithm and PBM parameters against our lists and caps (badAlg), one request per
    message (badRequest), a public key in the template (badCertTemplate), and the signature proof
    of possession (badPOP). Not checked: the protection itself (verify_pbm, verify_signature) and
    whether the key, subject or certificate are acceptable."""
    data = bounded_bytes(data, max_bytes, _bad)
    parts = _guarded(_parts, data)
    # The header alone first, so that a refusal of the rest can echo its transaction and nonce.
    raw_header = _guarded(_decode, parts[0], rfc9810.PKIHeader())
    header = _guarded(_header, raw_header)
    return _guarded(_message, data, raw_header, header, parts, header=header)


def verify_pbm(request: Request, secret: bytes) -> None:
    """Check the request's password-based MAC under `secret` (the authorisation code), in
    constant time; CmpError("cmp_bad_mac", badMessageCheck) if it does not match, or
    wrongIntegrity if the request is not PBM-protected."""
    if not isinstance(request.protection, PbmParameters):
        raise CmpError("cmp_wrong_protection", "wrongIntegrity", "not protected by a PBM",
                       header=request.header)
    if not pbm_matches(request.protection, secret, request.protected_part, request.protection_value):
        raise CmpError("cmp_bad_mac", "badMessageCheck", "the PBM does not match", header=request.header)


def verify_signature(request: Request, certificate: x509.Certificate) -> None:
    """Check that the request is signed by `certificate`'s key; CmpError("cmp_bad_signature",
    badMessageCheck) if not, or wrongIntegrity if it is not signature-protected. Whether the
    certificate may sign for the request is the caller's question."""
    if not isinstance(request.protection, SignatureAlgorithm):
        raise CmpError("cmp_wrong_protection", "wrongIntegrity", "not protected by a signature",
                       header=request.header)
    if not signature_valid(certificate.public_key(), request.protection, request.protection_value,
                           request.protected_part):
        raise CmpError("cmp_bad_signature", "badMessageCheck", "the signature does not verify",
                       header=request.header)


def confirms(confirmation: Confirmation, certificate: x509.Certificate) -> bool:
    """Whether a certConf's CertStatus names `certificate`: its certHash is the certificate's
    DER hashed with hashAlg, or without it the hash of the certificate's signature algorithm
    (RFC 4210 5.3.18, RFC 9810 5.3.18). Compared in constant time."""
    algorithm = confirmation.hash_algorithm or certificate.signature_hash_algorithm
    if algorithm is None:
        return False
    digest = hashes.Hash(algorithm)
    digest.update(certificate.public_bytes(serialization.Encoding.DER))
    return hmac.compare_digest(digest.finalize(), confirmation.cert_hash)
