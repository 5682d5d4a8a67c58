"""PKCS#10 certificate signing requests from customers who bring their own key."""

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from .errors import PkiError

MAX_CSR_BYTES = 16 * 1024
_MIN_RSA_BITS = 2048
_CURVES = (ec.SECP256R1, ec.SECP384R1)


def _check_key(csr: x509.CertificateSigningRequest) -> None:
    try:
        key = csr.public_key()
    except (ValueError, UnsupportedAlgorithm):
        raise PkiError("csr_weak_key", "unsupported public key") from None
    check_public_key(key)


def check_public_key(key) -> None:
    """A key a customer brings (in a CSR, or in a CMP request): RSA of 2048 bits or more, or
    EC on P-256 or P-384; else PkiError csr_weak_key."""
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < _MIN_RSA_BITS:
            raise PkiError("csr_weak_key", f"RSA-{key.key_size}")
    elif isinstance(key, ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, _CURVES):
            raise PkiError("csr_weak_key", f"curve {key.curve.name}")
    else:
        raise PkiError("csr_weak_key", type(key).__name__)


def load_csr(data: bytes) -> x509.CertificateSigningRequest:
    """Parse a PEM or DER CSR whose key is strong enough and whose signature proves possession of it."""
    if len(data) > MAX_CSR_BYTES:
        raise PkiError("csr_too_large", f"{len(data)} bytes")
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            csr = x509.load_pem_x509_csr(data)
        else:
            csr = x509.load_der_x509_csr(data)
    except ValueError as exc:
        raise PkiError("csr_unreadable", str(exc)) from None
    # A refused key needs no signature check; say what the customer can fix.
    _check_key(csr)
    try:
        valid = csr.is_signature_valid
    except (ValueError, UnsupportedAlgorithm):
        valid = False
    if not valid:
        raise PkiError("csr_bad_signature")
    return csr
