"""Building CMP replies (RFC 4210/9810) and protecting them.

A builder returns a Reply: the header fields every reply echoes (pvno, transactionID, the
request's senderNonce as recipNonce, a fresh senderNonce, messageTime, implicitConfirm when
granted) and the body. `protect_with_pbm` or `protect_with_signature` then names the sender,
protects the header and body and returns the DER PKIMessage.
"""

import datetime as dt
import os
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pyasn1.codec.der import decoder as der_decoder
from pyasn1.codec.der import encoder as der_encoder
from pyasn1.type import char, univ
from pyasn1_alt_modules import rfc4211, rfc5280, rfc9810

from ..signer import as_signer, der_tlv
from .errors import FAILURE_BITS, CmpError
from .protection import (
    HMAC_SHA256,
    ID_PASSWORD_BASED_MAC,
    REPLY_PBM_ITERATIONS,
    REPLY_PBM_SALT_BYTES,
    SHA256,
    SHA256_WITH_RSA,
    pbm_mac,
    pbm_parameters,
)
from .request import ID_IT, ID_IT_IMPLICIT_CONFIRM, INFO_TYPES, Header, Request

# RFC 4210 5.1.1: 128 bits of randomness make a nonce.
NONCE_BYTES = 16
_BODY_FOR = {"ir": "ip", "cr": "cp", "p10cr": "cp", "kur": "kup"}
_INFO_OIDS = {name: oid for oid, name in INFO_TYPES.items()}
_ID_IT_UNSUPPORTED_OIDS = ID_IT + ".7"


@dataclass
class Reply:
    """A reply before protection: header (without sender and protection) and body, as pyasn1
    values, and the certificates to send in extraCerts. Protecting it fills in the rest, so a
    Reply is protected once."""
    header: rfc9810.PKIHeader
    body: rfc9810.PKIBody
    extra_certs: list = field(default_factory=list)


def _fill(target, source):
    """Copy `source`'s components into `target`, a value of the same type under other tags:
    pyasn1 refuses to assign a value whose tags differ from the field's ([0] EXPLICIT …)."""
    for name, component in source.items():
        if component.isValue:
            target[name] = component
    return target


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def _cmp_certificate(cert: x509.Certificate):
    return der_decoder.decode(_der(cert), asn1Spec=rfc9810.CMPCertificate())[0]


def _free_text(text: str):
    free_text = rfc9810.PKIFreeText()
    free_text.append(char.UTF8String(text))
    return free_text


def _status_info(status: str, fail_info=(), text: str = "") -> rfc9810.PKIStatusInfo:
    info = rfc9810.PKIStatusInfo()
    info["status"] = rfc9810.PKIStatus(status)
    if text:
        info["statusString"] = _free_text(text)
    if fail_info:
        unknown = set(fail_info) - set(FAILURE_BITS)
        if unknown:
            raise CmpError("cmp_reply_invalid", "systemFailure", f"unknown PKIFailureInfo bits {sorted(unknown)}")
        highest = max(FAILURE_BITS.index(name) for name in fail_info)
        info["failInfo"] = rfc9810.PKIFailureInfo(
            tuple(int(name in fail_info) for name in FAILURE_BITS[:highest + 1]))
    return info


def _header(request_header: Header | None, now: dt.datetime | None, implicit_confirm: bool):
    header = rfc9810.PKIHeader()
    header["pvno"] = request_header.pvno if request_header else 2
    # sender is set when the reply is protected; recipient is whoever asked, or the NULL-DN.
    if request_header and request_header.sender_general_name:
        header["recipient"] = der_decoder.decode(request_header.sender_general_name,
                                                 asn1Spec=rfc5280.GeneralName())[0]
    else:
        header["recipient"]["directoryName"]["rdnSequence"] = rfc5280.RDNSequence()
    moment = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    header["messageTime"] = moment.strftime("%Y%m%d%H%M%SZ")
    if request_header and request_header.transaction_id is not None:
        header["transactionID"] = request_header.transaction_id
    header["senderNonce"] = os.urandom(NONCE_BYTES)
    if request_header and request_header.sender_nonce is not None:
        header["recipNonce"] = request_header.sender_nonce
    if implicit_confirm:
        info = rfc9810.InfoTypeAndValue()
        info["infoType"] = univ.ObjectIdentifier(ID_IT_IMPLICIT_CONFIRM)
        info["infoValue"] = der_encoder.encode(univ.Null(""))      # ImplicitConfirmValue ::= NULL
        header["generalInfo"].append(info)
    return header


def _reply(request_header: Header | None, body_type: str, now, implicit_confirm: bool = False):
    body = rfc9810.PKIBody()
    body.setComponentByName(body_type)  # an empty value of that alternative, filled in later
    return Reply(_header(request_header, now, implicit_confirm), body)


def _enrolment(request: Request) -> str:
    if request.body_type not in _BODY_FOR:
        raise CmpError("cmp_reply_invalid", "systemFailure",
                       f"a certificate reply does not answer {request.body_type}")
    return _BODY_FOR[request.body_type]


def _cert_response(request: Request, status) -> rfc9810.CertResponse:
    response = rfc9810.CertResponse()
    response["certReqId"] = request.certificate_request.cert_req_id
    response["status"] = status
    return response


def certificate_reply(request: Request, certificate: x509.Certificate, *, chain=(), ca_pubs=(),
                      implicit_confirm: bool = False, now: dt.datetime | None = None) -> Reply:
    """The ip, cp or kup (for an ir, cr/p10cr or kur) delivering `certificate`, accepted.

    `chain` (the issuing CA's certificates) goes in extraCerts so the client can build the path;
    `ca_pubs` (the root, for a first enrolment) in caPubs, which a client trusts directly only
    under PBM protection (RFC 4210 5.3.2). Implicit confirmation is granted only when the client
    asked for it and `implicit_confirm` allows it; otherwise the client must send certConf."""
    granted = implicit_confirm and request.header.implicit_confirm
    reply = _reply(request.header, _enrolment(request), now, granted)
    content = reply.body.getComponent()
    for cert in ca_pubs:
        content["caPubs"].append(_cmp_certificate(cert))
    response = _cert_response(request, _status_info("accepted"))
    _fill(response["certifiedKeyPair"]["certOrEncCert"]["certificate"], _cmp_certificate(certificate))
    content["response"].append(response)
    reply.extra_certs.extend(chain)
    return reply


def rejection_reply(request: Request, fail_info, text: str, *, now: dt.datetime | None = None) -> Reply:
    """A refusal in the reply the request expects: ip/cp/kup with a rejected CertResponse for an
    enrolment, rp for an rr, and an `error` message otherwise. `fail_info` names PKIFailureInfo
    bits; `text` becomes the statusString the client shows."""
    status = _status_info("rejection", fail_info, text)
    if request.body_type in _BODY_FOR:
        reply = _reply(request.header, _enrolment(request), now)
        reply.body.getComponent()["response"].append(_cert_response(request, status))
        return reply
    if request.body_type == "rr":
        reply = _reply(request.header, "rp", now)
        reply.body["rp"]["status"].append(status)
        return reply
    return error_reply(request.header, fail_info, text, now=now)


def revocation_reply(request: Request, *, now: dt.datetime | None = None) -> Reply:
    """The rp saying the certificate of the rr is revoked."""
    reply = _reply(request.header, "rp", now)
    reply.body["rp"]["status"].append(_status_info("accepted"))
    return reply


def _info(oid: str, value: bytes | None = None) -> rfc9810.InfoTypeAndValue:
    info = rfc9810.InfoTypeAndValue()
    info["infoType"] = univ.ObjectIdentifier(oid)
    if value is not None:
        info["infoValue"] = value
    return info


def genp_reply(request: Request, *, ca_certs=(), root_cert: x509.Certificate | None = None,
               now: dt.datetime | None = None) -> Reply:
    """The genp answering a genm (RFC 9480 4.3): caCerts with `ca_certs` (no value without
    any, as RFC 9483 4.3.1 says); rootCaCert with
    rootCaKeyUpdate carrying `root_cert` as newWithNew, or no value when the client already has
    it; an empty genm is answered with caCerts. Types we do not answer are listed in
    unsupportedOIDs (RFC 4210 5.3.19.7)."""
    reply = _reply(request.header, "genp", now)
    content = reply.body["genp"]
    unsupported = rfc9810.UnsupportedOIDsValue()
    for name in request.info_types or ("caCerts",):
        if name == "caCerts":
            certs = der_tlv(0x30, b"".join(_der(c) for c in ca_certs)) if ca_certs else None
            content.append(_info(_INFO_OIDS[name], certs))
        elif name == "rootCaCert" and root_cert is not None:
            up_to_date = request.old_root is not None and request.old_root == root_cert
            content.append(_info(_INFO_OIDS["rootCaKeyUpdate"],
                                 None if up_to_date else der_tlv(0x30, _der(root_cert))))
        else:
            unsupported.append(univ.ObjectIdentifier(_INFO_OIDS.get(name, name)))
    if len(unsupported):
        content.append(_info(_ID_IT_UNSUPPORTED_OIDS, der_encoder.encode(unsupported)))
    return reply


def confirm_reply(request: Request, *, now: dt.datetime | None = None) -> Reply:
    """The pkiConf answering a certConf."""
    reply = _reply(request.header, "pkiconf", now)
    reply.body["pkiconf"] = ""
    return reply


def error_reply(header: Header | None, fail_info, text: str, *, now: dt.datetime | None = None) -> Reply:
    """An `error` message: PKIStatusInfo rejection with `fail_info` bits and `text`. `header` is
    the request's (CmpError.header), or None when it could not be read."""
    reply = _reply(header, "error", now)
    reply.body["error"]["pKIStatusInfo"] = _status_info("rejection", fail_info, text)
    return reply


def _name(name: x509.Name) -> rfc5280.GeneralName:
    general_name = rfc5280.GeneralName()
    _fill(general_name["directoryName"], der_decoder.decode(name.public_bytes(), asn1Spec=rfc5280.Name())[0])
    return general_name


def _algorithm(target, oid: str, parameters: bytes | None) -> None:
    target["algorithm"] = univ.ObjectIdentifier(oid)
    if parameters is not None:
        target["parameters"] = parameters


def _message(reply: Reply, protect) -> bytes:
    """The DER PKIMessage: `protect` gets the DER ProtectedPart and returns the protection."""
    part = rfc9810.ProtectedPart()
    part["header"] = reply.header
    part["body"] = reply.body
    message = rfc9810.PKIMessage()
    message["header"] = reply.header
    message["body"] = reply.body
    message["protection"] = message["protection"].clone(hexValue=protect(der_encoder.encode(part)).hex())
    for cert in reply.extra_certs:
        message["extraCerts"].append(_cmp_certificate(cert))
    return der_encoder.encode(message)


def protect_with_pbm(reply: Reply, secret: bytes, sender: x509.Name, sender_kid: bytes | None) -> bytes:
    """`reply` as DER, protected by a PBM under `secret` (RFC 4210 5.1.3.1): the same shared
    secret as the request's, under parameters of our own, as the responder may choose (the
    client verifies with the ones the reply names): a fresh salt, SHA-256 as one-way function,
    HMAC-SHA256. `sender_kid` names the shared secret (the reference number the client sent)."""
    params = pbm_parameters(os.urandom(REPLY_PBM_SALT_BYTES), SHA256, REPLY_PBM_ITERATIONS, HMAC_SHA256)
    pbm = rfc4211.PBMParameter()
    pbm["salt"] = params.salt
    _algorithm(pbm["owf"], SHA256, None)
    pbm["iterationCount"] = params.iterations
    _algorithm(pbm["mac"], HMAC_SHA256, None)
    reply.header["sender"] = _name(sender)
    _algorithm(reply.header["protectionAlg"], ID_PASSWORD_BASED_MAC, der_encoder.encode(pbm))
    if sender_kid is not None:
        reply.header["senderKID"] = sender_kid
    return _message(reply, lambda part: pbm_mac(params, secret, part))


def protect_with_signature(reply: Reply, signer, signer_cert: x509.Certificate, chain=()) -> bytes:
    """`reply` as DER, signed (sha256WithRSAEncryption) by `signer` (a pki.signer.Signer, so the
    key may be in a PKCS#11 token) whose certificate is `signer_cert`. The sender is the
    certificate's subject and senderKID its subject key identifier, as clients match them
    (RFC 4210 5.1.1); the certificate and `chain` go first in extraCerts."""
    signer = as_signer(signer)
    if signer.public_key() != signer_cert.public_key():
        raise CmpError("cmp_reply_invalid", "systemFailure", "the signer's key is not the certificate's")
    reply.header["sender"] = _name(signer_cert.subject)
    _algorithm(reply.header["protectionAlg"], SHA256_WITH_RSA, der_encoder.encode(univ.Null("")))
    try:
        ski = signer_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
        reply.header["senderKID"] = ski
    except x509.ExtensionNotFound:
        pass
    reply.extra_certs[:0] = [signer_cert, *chain]
    return _message(reply, signer.sign)
