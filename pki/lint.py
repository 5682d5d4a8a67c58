"""Pre-issuance linting: every certificate is checked with pkilint's RFC 5280 validators before it is signed."""

import functools

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pkilint import loader
from pkilint.pkix import certificate, extension, name
from pkilint.validation import ValidationFindingSeverity

from .errors import PkiError


@functools.cache
def _throwaway_key() -> rsa.RSAPrivateKey:
    # Our CA keys are RSA-2048 with SHA-256, so this signature has the same algorithm and shape;
    # one key per process keeps linting cheap.
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


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


def lint_certificate(cert: x509.Certificate) -> list[str]:
    """pkilint findings at WARNING severity or worse, one line each: "<node path>: <finding>"."""
    doc = loader.load_der_certificate(cert.public_bytes(serialization.Encoding.DER), "certificate")
    return [
        f"{result.node.path}: {fd}"
        for result in _validator().validate(doc.root)
        for fd in result.finding_descriptions
        if fd.finding.severity <= ValidationFindingSeverity.WARNING
    ]


def lint_builder(builder: x509.CertificateBuilder) -> list[str]:
    """Lint the certificate `builder` would make, signed with a throwaway key so the CA key is not used."""
    return lint_certificate(builder.sign(_throwaway_key(), hashes.SHA256()))


def require_clean(builder: x509.CertificateBuilder) -> None:
    findings = lint_builder(builder)
    if findings:
        raise PkiError("lint_failed", findings)
