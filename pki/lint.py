"""Linting with pkilint, in-process: certificates before they are signed (RFC 5280), CRLs (RFC 5280
section 5) and OCSP responses (RFC 6960) as relying parties will see them."""

import functools

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from pkilint import loader, pkix
from pkilint.pkix import certificate, extension, name, ocsp
from pkilint.pkix import crl as pkix_crl
from pkilint.validation import ValidationFindingSeverity
from pyasn1.error import PyAsn1Error

from .errors import PkiError
from .signer import throwaway_key


@functools.cache
def _validator():
    # The same validator that pkilint's `lint_pkix_cert` command builds.
    return certificate.create_pkix_certificate_validator_container(
        certificate.create_decoding_validators(name.ATTRIBUTE_TYPE_MAPPINGS, extension.EXTENSION_MAPPINGS),
        [
            certificate.create_issuer_validator_container([]),
            certificate.create_validity_validator_container(),
            certificate.create_subject_validator_container([]),
            certificate.create_extensions_validator_container([]),
            certificate.create_spki_validator_container([]),
        ],
    )


def _findings(results) -> list[str]:
    return [
        f"{result.node.path}: {fd}"
        for result in results
        for fd in result.finding_descriptions
        if fd.finding.severity <= ValidationFindingSeverity.WARNING
    ]


def lint_certificate(cert: x509.Certificate) -> list[str]:
    """pkilint findings at WARNING severity or worse, one line each: "<node path>: <finding>"."""
    doc = loader.load_der_certificate(cert.public_bytes(serialization.Encoding.DER), "certificate")
    return _findings(_validator().validate(doc.root))


def lint_builder(builder: x509.CertificateBuilder) -> list[str]:
    """Lint the certificate `builder` would make, signed with a throwaway key so the CA key is not used."""
    return lint_certificate(builder.sign(throwaway_key(), hashes.SHA256()))


def require_clean(builder: x509.CertificateBuilder) -> bytes:
    """Lint what `builder` makes; return the linted TBSCertificate, which the CA's signature
    must then cover byte for byte (the throwaway key signs with the same algorithm)."""
    linted = builder.sign(throwaway_key(), hashes.SHA256())
    findings = lint_certificate(linted)
    if findings:
        raise PkiError("lint_failed", findings)
    return linted.tbs_certificate_bytes


@functools.cache
def _crl_validator():
    # What `lint_crl lint -p pkix -t crl` builds. The CRL/ARL type only selects CA/Browser Forum
    # validators (the BR profile), so the PKIX profile is the same for both.
    return pkix_crl.create_pkix_crl_validator_container(
        [
            pkix.create_attribute_decoder(name.ATTRIBUTE_TYPE_MAPPINGS),
            pkix.create_extension_decoder(extension.EXTENSION_MAPPINGS),
        ],
        [
            pkix_crl.create_issuer_validator_container([]),
            pkix_crl.create_validity_validator_container([]),
            pkix_crl.create_extensions_validator_container([]),
        ],
    )


def lint_crl(crl: x509.CertificateRevocationList) -> list[str]:
    """pkilint's PKIX CRL findings at WARNING severity or worse, one line each."""
    if not isinstance(crl, x509.CertificateRevocationList):
        raise PkiError("lint_unreadable", "not a CertificateRevocationList")
    try:
        doc = loader.load_der_crl(crl.public_bytes(serialization.Encoding.DER), "crl")
    except (ValueError, PyAsn1Error) as exc:  # pyasn1's errors are not ValueErrors
        raise PkiError("lint_unreadable", str(exc)) from None
    return _findings(_crl_validator().validate(doc.root))


@functools.cache
def _ocsp_response_validator():
    # What `lint_ocsp_response lint` builds.
    return ocsp.create_pkix_ocsp_response_validator_container(
        [
            ocsp.create_response_decoder(),
            pkix.create_attribute_decoder(name.ATTRIBUTE_TYPE_MAPPINGS),
            pkix.create_extension_decoder(extension.EXTENSION_MAPPINGS),
        ],
        [],
    )


def lint_ocsp_response(der: bytes) -> list[str]:
    """pkilint's RFC 6960 OCSP response findings at WARNING severity or worse, one line each."""
    if not isinstance(der, (bytes, bytearray)):
        raise PkiError("lint_unreadable", "an OCSP response is DER bytes")
    try:
        doc = loader.load_der_ocsp_response(bytes(der), "ocsp_response")
    except (ValueError, PyAsn1Error) as exc:  # pyasn1's errors are not ValueErrors
        raise PkiError("lint_unreadable", str(exc)) from None
    return _findings(_ocsp_response_validator().validate(doc.root))
