"""The CA hierarchy (root -> issuing CA -> end entities, plus a delegated OCSP signer): the only code
that touches CA keys."""

import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .errors import PkiError
from .profile import CERT_TYPES, add_years, key_identifiers, policy_oid
from .serials import random_serial

_PEM_ENCRYPTED_KEY_LABEL = b"ENCRYPTED PRIVATE KEY"   # the PEM label of an encrypted PKCS#8 key


@dataclass
class CaKeys:
    root_cert: x509.Certificate
    root_key: rsa.RSAPrivateKey
    issuing_cert: x509.Certificate
    issuing_key: rsa.RSAPrivateKey
    ocsp_cert: x509.Certificate
    ocsp_key: rsa.RSAPrivateKey


def _name(org: str, cn: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "KR"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
        x509.NameAttribute(NameOID.COMMON_NAME, cn),
    ])


def _key_usage(*, cert_sign: bool, digital_signature: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=cert_sign, crl_sign=cert_sign,
        encipher_only=False, decipher_only=False)


def _builder(subject: x509.Name, issuer: x509.Name, key, now: dt.datetime, not_after: dt.datetime):
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
            .public_key(key.public_key()).serial_number(random_serial())
            .not_valid_before(now).not_valid_after(not_after))


def sign_certificate(builder: x509.CertificateBuilder, issuing_key) -> x509.Certificate:
    return builder.sign(issuing_key, hashes.SHA256())


def create_root(org: str, now: dt.datetime):
    """A self-signed RSA-3072 root valid for 20 years; returns (cert, key)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    name = _name(org, f"{org} Root CA")
    builder = (_builder(name, name, key, now, add_years(now, 20))
               .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
               .add_extension(_key_usage(cert_sign=True), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
    return sign_certificate(builder, key), key


def create_issuing(org: str, root_cert: x509.Certificate, root_key, policy_arc: str, now: dt.datetime):
    """The RSA-2048 issuing CA (10 years, never past the root) carrying every type's policy OID; returns (cert, key)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    not_after = min(add_years(now, 10), root_cert.not_valid_after_utc)
    builder = (_builder(_name(org, f"{org} Issuing CA 1"), root_cert.subject, key, now, not_after)
               .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
               .add_extension(_key_usage(cert_sign=True), critical=True)
               .add_extension(x509.CertificatePolicies([
                   x509.PolicyInformation(policy_oid(policy_arc, t), None) for t in CERT_TYPES.values()
               ]), critical=False))
    for ext in key_identifiers(key.public_key(), root_cert):
        builder = builder.add_extension(ext, critical=False)
    return sign_certificate(builder, root_key), key


def create_ocsp_signer(org: str, issuing_cert: x509.Certificate, issuing_key, now: dt.datetime, days: int = 30):
    """A short-lived delegated OCSP responder certificate (RFC 6960 4.2.2.2); returns (cert, key)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    not_after = min(now + dt.timedelta(days=days), issuing_cert.not_valid_after_utc)
    builder = (_builder(_name(org, f"{org} OCSP Responder"), issuing_cert.subject, key, now, not_after)
               .add_extension(_key_usage(cert_sign=False, digital_signature=True), critical=True)
               .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), critical=False)
               # Relying parties need not check this signer's own status; it is short-lived instead.
               .add_extension(x509.OCSPNoCheck(), critical=False))
    for ext in key_identifiers(key.public_key(), issuing_cert):
        builder = builder.add_extension(ext, critical=False)
    return sign_certificate(builder, issuing_key), key


def encrypt_key_pem(key, passphrase: bytes) -> bytes:
    """PKCS#8 PEM encrypted with the best scheme cryptography offers, for CA keys at rest."""
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.BestAvailableEncryption(passphrase))


def load_key_pem(data: bytes, passphrase: bytes):
    """Load a key written by encrypt_key_pem."""
    # cryptography reports a wrong passphrase and a damaged file with the same ValueError;
    # the PEM label tells which one the operator has to fix.
    if _PEM_ENCRYPTED_KEY_LABEL not in data:
        raise PkiError("ca_key_unreadable", "not an encrypted PKCS#8 PEM key")
    try:
        return serialization.load_pem_private_key(data, passphrase)
    except (ValueError, TypeError) as exc:
        raise PkiError("ca_passphrase_incorrect", str(exc)) from None


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 fingerprint as colon-separated upper-case hex, as browsers and openssl show it."""
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()
