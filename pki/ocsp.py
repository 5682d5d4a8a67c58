"""OCSP (RFC 6960): parse a request into one question, and answer it signed by the delegated responder.

The web front end passes the request body to `parse_request`; a service decides the certificate's
status; `build_response` signs the answer. Anything `parse_request` refuses is answered with
`malformed_response()`, which is unsigned, as RFC 6960 section 2.3 allows for error statuses.
"""

import datetime as dt
import functools
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from pyasn1.codec.der import decoder as der_decoder
from pyasn1.error import PyAsn1Error
from pyasn1_alt_modules import rfc5280

from .crl import REASONS
from .errors import PkiError, bounded_bytes
from .signer import as_signer

# A one-certificate request is about 100 bytes (with a nonce, a signature and a requestor
# certificate a few KB); anything larger is refused before it reaches a parser.
MAX_REQUEST_BYTES = 10 * 1024

# CertIDs hashed with anything else are refused as malformed rather than answered "unknown":
# we could not tell whether they name our issuer, and "unknown" is a signed claim that we are
# authoritative for the certificate. RFC 5019 and the CA/Browser Forum expect SHA-1; RFC 6960
# clients may use SHA-256.
_ACCEPTED_HASHES = {"sha1": hashes.SHA1, "sha256": hashes.SHA256}

# RFC 9654 (which obsoletes RFC 8954): a nonce is 1 to 128 octets, and a request carrying any
# other length MUST be answered malformedRequest.
_NONCE_LENGTHS = range(1, 129)

# RFC 5280 4.1.2.2: serials are positive and at most 20 octets, so below 2**159. A CertID naming
# anything else cannot be one of our certificates, and would not fit the 40-hex-digit storage form.
_MAX_SERIAL = 1 << 159

_STATES = {"good": ocsp.OCSPCertStatus.GOOD, "revoked": ocsp.OCSPCertStatus.REVOKED,
           "unknown": ocsp.OCSPCertStatus.UNKNOWN}


@dataclass(frozen=True)
class OcspQuestion:
    issuer_name_hash: bytes
    issuer_key_hash: bytes
    serial: int
    hash_algorithm: hashes.HashAlgorithm
    nonce: bytes | None


@dataclass(frozen=True)
class CertStatus:
    state: str  # "good", "revoked" or "unknown"
    revoked_at: dt.datetime | None = None  # aware; only for "revoked"
    reason: str | None = None  # a key of crl.REASONS; "certificate-hold" for a suspended certificate


def _malformed(detail: str):
    return PkiError("ocsp_malformed", detail)


def parse_request(der: bytes) -> OcspQuestion:
    """The single question a DER OCSPRequest asks; PkiError("ocsp_malformed") for anything else."""
    der = bounded_bytes(der, MAX_REQUEST_BYTES, _malformed)
    try:
        request = ocsp.load_der_ocsp_request(der)
        # cryptography answers a requestList of zero or several entries with NotImplementedError
        # (checked: it does not silently take the first), and parses extensions lazily.
        hash_algorithm = request.hash_algorithm
        serial = request.serial_number
        name_hash = request.issuer_name_hash
        key_hash = request.issuer_key_hash
        extensions = request.extensions
    except UnsupportedAlgorithm as exc:
        raise _malformed(f"unsupported CertID hash: {exc}") from None
    except (ValueError, TypeError, NotImplementedError) as exc:
        raise _malformed(str(exc)) from None
    if type(hash_algorithm) not in _ACCEPTED_HASHES.values():
        raise _malformed(f"CertID hash {hash_algorithm.name} is not SHA-1 or SHA-256")
    if len(name_hash) != hash_algorithm.digest_size or len(key_hash) != hash_algorithm.digest_size:
        raise _malformed("CertID hash lengths do not match the hash algorithm")
    if not 0 < serial < _MAX_SERIAL:
        raise _malformed("serial number is not a positive integer of at most 20 octets")
    try:
        nonce = extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
    except x509.ExtensionNotFound:
        nonce = None
    if nonce is not None and len(nonce) not in _NONCE_LENGTHS:
        raise _malformed(f"nonce of {len(nonce)} octets (1 to 128 allowed)")
    return OcspQuestion(issuer_name_hash=name_hash, issuer_key_hash=key_hash, serial=serial,
                        hash_algorithm=hash_algorithm, nonce=nonce)


def _subject_public_key_bits(cert: x509.Certificate) -> bytes:
    # RFC 6960 4.1.1: issuerKeyHash is the hash of the subjectPublicKey BIT STRING's value
    # (without tag, length and unused-bits octet), not of the whole SubjectPublicKeyInfo.
    spki_der = cert.public_key().public_bytes(serialization.Encoding.DER,
                                              serialization.PublicFormat.SubjectPublicKeyInfo)
    spki, _ = der_decoder.decode(spki_der, asn1Spec=rfc5280.SubjectPublicKeyInfo())
    return spki["subjectPublicKey"].asOctets()


@functools.lru_cache(maxsize=16)
def _issuer_hashes(issuing_cert: x509.Certificate, algorithm_name: str) -> tuple[bytes, bytes]:
    # Asked on every OCSP request about the same few certificates; certificates are immutable
    # and hashable, so the answer can be kept (decoding the key with pyasn1 is the slow part).
    algorithm = _ACCEPTED_HASHES[algorithm_name]()
    try:
        key_bits = _subject_public_key_bits(issuing_cert)
    except (ValueError, PyAsn1Error) as exc:
        raise PkiError("ocsp_invalid", str(exc)) from None

    def digest(data: bytes) -> bytes:
        h = hashes.Hash(algorithm)
        h.update(data)
        return h.finalize()

    # The issuer's Name as it appears in the certificates it issues, i.e. its own subject.
    return digest(issuing_cert.subject.public_bytes()), digest(key_bits)


def issuer_hashes(issuing_cert: x509.Certificate, algorithm: hashes.HashAlgorithm) -> tuple[bytes, bytes]:
    """(issuerNameHash, issuerKeyHash) of RFC 6960 4.1.1 for certificates issued by `issuing_cert`."""
    if not isinstance(issuing_cert, x509.Certificate):
        raise PkiError("ocsp_invalid", "issuing_cert is not a certificate")
    if type(algorithm) not in _ACCEPTED_HASHES.values():
        raise PkiError("ocsp_invalid", f"unsupported hash algorithm {algorithm!r}")
    return _issuer_hashes(issuing_cert, algorithm.name)


def is_our_issuer(question: OcspQuestion, issuing_cert: x509.Certificate) -> bool:
    """Whether the question's CertID names `issuing_cert` as the issuer (both hashes must match)."""
    name_hash, key_hash = issuer_hashes(issuing_cert, question.hash_algorithm)
    return question.issuer_name_hash == name_hash and question.issuer_key_hash == key_hash


def _aware(value, what: str) -> dt.datetime:
    if not isinstance(value, dt.datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise PkiError("ocsp_invalid", f"{what} must be an aware datetime, got {value!r}")
    return value


def build_response(question: OcspQuestion, status: CertStatus, responder_cert: x509.Certificate,
                   responder_key, this_update: dt.datetime, next_update: dt.datetime) -> bytes:
    """A successful BasicOCSPResponse in DER, signed SHA-256 by the delegated responder.

    The responder is named by key hash and its certificate included, so relying parties can check
    the delegation (RFC 6960 4.2.2.2) without fetching anything. A nonce in the question is
    echoed. A suspended (certificateHold) certificate is "revoked" with reason certificateHold, as
    RFC 6960 2.2 says; an "unspecified" reason is left out, as in the CRL.
    """
    if not isinstance(question, OcspQuestion) or not isinstance(status, CertStatus):
        raise PkiError("ocsp_invalid", "question or status of the wrong type")
    cert_status = _STATES.get(status.state) if isinstance(status.state, str) else None
    if cert_status is None:
        raise PkiError("ocsp_invalid", f"unknown state {status.state!r}")
    revocation_time = revocation_reason = None
    if cert_status is ocsp.OCSPCertStatus.REVOKED:
        revocation_time = _aware(status.revoked_at, "revoked_at")
        if status.reason not in REASONS:
            raise PkiError("ocsp_invalid", f"unknown revocation reason {status.reason!r}")
        if status.reason != "unspecified":
            revocation_reason = REASONS[status.reason]
    elif status.revoked_at is not None or status.reason is not None:
        raise PkiError("ocsp_invalid", f"a {status.state} status has no revocation time or reason")
    this_update = _aware(this_update, "this_update")
    next_update = _aware(next_update, "next_update")
    if next_update <= this_update:
        raise PkiError("ocsp_invalid", "next_update must be after this_update")
    if not isinstance(responder_cert, x509.Certificate) or not hasattr(responder_key, "public_key") \
            or responder_key.public_key() != responder_cert.public_key():
        # A response signed by a key other than the included certificate's fails every check.
        raise PkiError("ocsp_invalid", "responder_key does not belong to responder_cert")

    try:
        builder = (ocsp.OCSPResponseBuilder()
                   .add_response_by_hash(
                       question.issuer_name_hash, question.issuer_key_hash, question.serial,
                       question.hash_algorithm, cert_status, this_update, next_update,
                       revocation_time, revocation_reason))
        if question.nonce is not None:
            builder = builder.add_extension(x509.OCSPNonce(question.nonce), critical=False)
        return as_signer(responder_key).sign_ocsp(builder, responder_cert)
    except (ValueError, TypeError) as exc:
        raise PkiError("ocsp_invalid", str(exc)) from None


def _unsuccessful(status: ocsp.OCSPResponseStatus) -> bytes:
    return ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(
        serialization.Encoding.DER)


def malformed_response() -> bytes:
    """The unsigned malformedRequest OCSPResponse (no responseBytes), in DER."""
    return _unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)


def unauthorized_response() -> bytes:
    """The unsigned unauthorized OCSPResponse: the responder cannot answer for this
    certificate (RFC 5019 2.2.3), e.g. its issuer's key is offline and signed no answer."""
    return _unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED)


def answer_times(der: bytes) -> tuple[dt.datetime, dt.datetime]:
    """(thisUpdate, nextUpdate) of a signed one-certificate response, aware."""
    response = ocsp.load_der_ocsp_response(der)
    return response.this_update_utc, response.next_update_utc
