"""CMP, the Certificate Management Protocol (RFC 4210 and 9810, CRMF RFC 4211, over HTTP as
RFC 6712 says): the protocol layer only, pure functions over bytes and `cryptography` objects.

A request is read with `parse_request`, its protection checked with `verify_pbm` (the
reference number and authorisation code of an ir, cr or p10cr) or `verify_signature` (the
current certificate of a kur or rr), and answered with a reply builder and then
`protect_with_pbm` (answers to PBM-protected requests) or `protect_with_signature` (the CMP
signer). Every refusal is a CmpError whose `fail_info` the `error_reply` names.
"""

from .errors import FAILURE_BITS, CmpError
from .protection import PBM_MAX_ITERATIONS, PBM_MIN_ITERATIONS, PBM_SALT_LENGTHS, PbmParameters, SignatureAlgorithm
from .reply import (
    Reply,
    certificate_reply,
    confirm_reply,
    error_reply,
    genp_reply,
    protect_with_pbm,
    protect_with_signature,
    rejection_reply,
    revocation_reply,
)
from .request import (
    MAX_REQUEST_BYTES,
    CertificateRequest,
    Confirmation,
    Header,
    Request,
    RevocationRequest,
    StatusInfo,
    confirms,
    parse_request,
    verify_pbm,
    verify_signature,
)

__all__ = [
    "FAILURE_BITS", "MAX_REQUEST_BYTES", "PBM_MAX_ITERATIONS", "PBM_MIN_ITERATIONS", "PBM_SALT_LENGTHS",
    "CertificateRequest", "CmpError", "Confirmation", "Header", "PbmParameters", "Reply", "Request",
    "RevocationRequest", "SignatureAlgorithm", "StatusInfo", "certificate_reply", "confirm_reply",
    "confirms", "error_reply", "genp_reply", "parse_request", "protect_with_pbm",
    "protect_with_signature", "rejection_reply", "revocation_reply", "verify_pbm", "verify_signature",
]
