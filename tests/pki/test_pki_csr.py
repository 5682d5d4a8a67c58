"""Customer CSRs: accepted keys and formats, and each way a CSR is refused."""

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from pki.csr import MAX_CSR_BYTES, load_csr
from pki.errors import PkiError


def _csr(key, algorithm=hashes.SHA256()) -> x509.CertificateSigningRequest:
    return (x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "customer")]))
            .sign(key, algorithm))


def _code(data: bytes) -> str:
    with pytest.raises(PkiError) as e:
        load_csr(data)
    return e.value.code


@pytest.fixture(scope="module")
def rsa_csr(ee_key):
    return _csr(ee_key)


def test_rsa_2048_pem_and_der(rsa_csr):
    pem = rsa_csr.public_bytes(serialization.Encoding.PEM)
    der = rsa_csr.public_bytes(serialization.Encoding.DER)
    assert load_csr(pem) == rsa_csr
    assert load_csr(b"\n  " + pem) == rsa_csr
    assert load_csr(der) == rsa_csr


@pytest.mark.parametrize("curve", [ec.SECP256R1(), ec.SECP384R1()])
def test_ecdsa_accepted(curve):
    csr = _csr(ec.generate_private_key(curve))
    assert load_csr(csr.public_bytes(serialization.Encoding.PEM)) == csr


@pytest.mark.parametrize("key", [
    rsa.generate_private_key(public_exponent=65537, key_size=1024),
    ec.generate_private_key(ec.SECP521R1()),
    ec.generate_private_key(ec.SECP256K1()),
    ed25519.Ed25519PrivateKey.generate(),
], ids=["rsa1024", "p521", "secp256k1", "ed25519"])
def test_weak_or_unsupported_keys(key):
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    assert _code(_csr(key, algorithm).public_bytes(serialization.Encoding.DER)) == "csr_weak_key"


def test_tampered_signature(rsa_csr):
    der = bytearray(rsa_csr.public_bytes(serialization.Encoding.DER))
    der[-1] ^= 0x01  # last octet of the signature value
    assert _code(bytes(der)) == "csr_bad_signature"


def test_tampered_subject(rsa_csr):
    der = rsa_csr.public_bytes(serialization.Encoding.DER)
    assert _code(der.replace(b"customer", b"customex")) == "csr_bad_signature"


@pytest.mark.parametrize("data", [b"", b"garbage", b"\x30\x03\x02\x01\x05",
                                  b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"])
def test_unreadable(data):
    assert _code(data) == "csr_unreadable"


def test_too_large(rsa_csr):
    pem = rsa_csr.public_bytes(serialization.Encoding.PEM)
    assert _code(pem + b"\n" * (MAX_CSR_BYTES + 1 - len(pem))) == "csr_too_large"


@settings(max_examples=200)
@given(st.binary(max_size=600))
def test_garbage_raises_only_pki_error(data):
    try:
        load_csr(data)
    except PkiError:
        pass
