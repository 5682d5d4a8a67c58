"""Certificate and key file formats other than NPKI, as we write them: PEM, DER and PKCS#12.

Uploaded .p12 files are read by pki.pkcs12, never by OpenSSL.
"""

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding, PrivateFormat
from cryptography.hazmat.primitives.serialization.pkcs12 import PBES, serialize_key_and_certificates

from .errors import PkiError

# OWASP's current PBKDF2-HMAC-SHA256 minimum; DESIGN.md asks for at least this.
PKCS12_ITERATIONS = 600_000


def pkcs12(key, cert: x509.Certificate, chain: list[x509.Certificate], password: str,
           friendly_name: str) -> bytes:
    """A .p12 with key, certificate and chain: AES-256-CBC, PBKDF2-HMAC-SHA256, SHA-256 MAC.

    cryptography offers no way to set the MAC's iteration count, which stays at 2048.
    """
    if not password:
        raise PkiError("password_required")
    encryption = (PrivateFormat.PKCS12.encryption_builder()
                  .kdf_rounds(PKCS12_ITERATIONS)
                  .key_cert_algorithm(PBES.PBESv2SHA256AndAES256CBC)
                  .hmac_hash(hashes.SHA256())
                  .build(password.encode("utf-8")))
    return serialize_key_and_certificates(
        friendly_name.encode("utf-8"), key, cert, chain, encryption)


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(Encoding.PEM)


def cert_der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(Encoding.DER)


def chain_pem(certs: list[x509.Certificate]) -> bytes:
    return b"".join(cert_pem(c) for c in certs)
