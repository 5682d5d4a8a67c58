"""The CA hierarchy (root -> issuing CA -> end entities, plus a delegated OCSP signer): the CA
certificates' profiles, and the signing of whatever a CA signs through a Signer (pki.signer).

The root is offline: its key signs only at a ceremony (the issuing CA certificate, the root's
CRL and the pre-signed OCSP answers for the certificates it issued). The issuing CA and the OCSP
signer are online, in a file or a PKCS#11 token."""

import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from .profile import CERT_TYPES, Urls, add_years, key_identifiers, policy_oid
from .serials import random_serial
from .signer import FileSigner, Signer, as_signer

ROOT_KEY_BITS = 3072


@dataclass
class CaKeys:
    """What the online CA holds: the certificates of the chain, and signers for the issuing CA,
    the OCSP responder and the CMP signer (None until a CA made before it had one makes it).
    The root's key is not among them: it is kept offline."""
    root_cert: x509.Certificate
    issuing_cert: x509.Certificate
    issuing_key: Signer
    ocsp_cert: x509.Certificate
    ocsp_key: Signer
    cmp_cert: x509.Certificate | None = None
    cmp_key: Signer | None = None


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


def _builder(subject: x509.Name, issuer: x509.Name, public_key, now: dt.datetime,
             not_after: dt.datetime):
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
            .public_key(public_key).serial_number(random_serial())
            .not_valid_before(now).not_valid_after(not_after))


def sign_certificate(builder: x509.CertificateBuilder, issuer) -> x509.Certificate:
    """`builder`'s certificate signed by `issuer` (a Signer, or a private key held in memory)."""
    return as_signer(issuer).sign_certificate(builder)


def create_root(org: str, now: dt.datetime) -> tuple[x509.Certificate, FileSigner]:
    """A self-signed RSA-3072 root valid for 20 years; returns (cert, key). The key is a file
    key: it is written encrypted to removable storage and kept offline."""
    key = FileSigner.generate(ROOT_KEY_BITS)
    name = _name(org, f"{org} Root CA")
    builder = (_builder(name, name, key.public_key(), now, add_years(now, 20))
               .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
               .add_extension(_key_usage(cert_sign=True), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                              critical=False))
    return key.sign_certificate(builder), key


def issuing_subject(org: str) -> x509.Name:
    return _name(org, f"{org} Issuing CA 1")


def create_issuing(org: str, root_cert: x509.Certificate, root_key, policy_arc: str,
                   now: dt.datetime, urls: Urls | None = None, public_key=None,
                   subject: x509.Name | None = None):
    """The issuing CA certificate (10 years, never past the root) carrying every type's policy
    OID and, with `urls`, where its own status is published: the root's CRL, the root
    certificate, and the OCSP responder (which answers for it with the root's pre-signed
    responses). A new RSA-2048 file key unless `public_key` is given (a key in a token, or the
    current key when the certificate is re-issued). Returns (cert, new key or None)."""
    key = None
    if public_key is None:
        key = FileSigner.generate()
        public_key = key.public_key()
    not_after = min(add_years(now, 10), root_cert.not_valid_after_utc)
    builder = (_builder(subject or issuing_subject(org), root_cert.subject, public_key, now,
                        not_after)
               .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
               .add_extension(_key_usage(cert_sign=True), critical=True)
               .add_extension(x509.CertificatePolicies([
                   x509.PolicyInformation(policy_oid(policy_arc, t), None)
                   for t in CERT_TYPES.values()]), critical=False))
    if urls is not None:
        builder = (builder
                   .add_extension(x509.CRLDistributionPoints([x509.DistributionPoint(
                       full_name=[x509.UniformResourceIdentifier(urls.root_crl)],
                       relative_name=None, reasons=None, crl_issuer=None)]), critical=False)
                   .add_extension(x509.AuthorityInformationAccess([
                       x509.AccessDescription(AuthorityInformationAccessOID.OCSP,
                                              x509.UniformResourceIdentifier(urls.ocsp)),
                       x509.AccessDescription(AuthorityInformationAccessOID.CA_ISSUERS,
                                              x509.UniformResourceIdentifier(urls.root_cert)),
                   ]), critical=False))
    for ext in key_identifiers(public_key, root_cert):
        builder = builder.add_extension(ext, critical=False)
    return sign_certificate(builder, root_key), key


# The issuing CA's delegated signers, each short-lived and re-issued with a new key: the
# OCSP responder (RFC 6960 4.2.2.2; relying parties need not check its own status, so
# id-pkix-ocsp-nocheck) and the CMP signer that protects CMP answers not protected by a
# password-based MAC (id-kp-cmcCA, RFC 6402: it speaks for the CA).
ID_KP_CMC_CA = x509.ObjectIdentifier("1.3.6.1.5.5.7.3.27")
SIGNER_ROLES = {
    "ocsp": ("OCSP Responder", ExtendedKeyUsageOID.OCSP_SIGNING),
    "cmp": ("CMP Signer", ID_KP_CMC_CA),
}


def create_signer(role: str, org: str, issuing_cert: x509.Certificate, issuing_key,
                  now: dt.datetime, days: int = 30, public_key=None):
    """A delegated signer certificate of `role` (SIGNER_ROLES) for a new RSA-2048 file key, or
    for `public_key` (a key in a token); returns (cert, new key or None)."""
    name, usage = SIGNER_ROLES[role]
    key = None
    if public_key is None:
        key = FileSigner.generate()
        public_key = key.public_key()
    not_after = min(now + dt.timedelta(days=days), issuing_cert.not_valid_after_utc)
    builder = (_builder(_name(org, f"{org} {name}"), issuing_cert.subject, public_key, now,
                        not_after)
               .add_extension(_key_usage(cert_sign=False, digital_signature=True), critical=True)
               .add_extension(x509.ExtendedKeyUsage([usage]), critical=False))
    if role == "ocsp":
        builder = builder.add_extension(x509.OCSPNoCheck(), critical=False)
    for ext in key_identifiers(public_key, issuing_cert):
        builder = builder.add_extension(ext, critical=False)
    return sign_certificate(builder, issuing_key), key


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 fingerprint as colon-separated upper-case hex, as browsers and openssl show it."""
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()
